"""The training run: model directory, checkpoints, the loop, progress and TensorBoard logs."""
