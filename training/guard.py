"""What stops a run whose loss or weights stop being finite, before any such value reaches a checkpoint.

The compiled step reports whether its loss was finite, which it is not whenever a row the step reads holds a
non-finite value (model/train_step.py), and the graph loop stops at the first step that was not
(training/step_runner.py). Before each checkpoint the whole of E, W and its bias is checked too, so that a value
that overflowed in an update and was not read since is never saved either.
Training then ends with one line naming the step, the value and the flag to change, and exit code 3; the
checkpoints already on disk hold finite values, so export and resume work from the latest one.
"""

import tensorflow as tf

from config import Config, TrainingConfig
from errors import TrainingDiverged


class DivergenceGuard:
    """Raises TrainingDiverged, with the one line the user sees, when a step or the state is not finite.

    Args:
        config: the run's config, for the flags named in the message.
        model_dir: the model directory, for the resume command in the message.
        variables: E, W and W's bias, checked in full before each checkpoint.
    """

    def __init__(self, config: Config, model_dir: str, variables: list[tf.Variable]):
        self.config = config
        self.model_dir = model_dir
        self.variables = variables

    def step_diverged(self, step: int, loss: float, latest_checkpoint: str | None) -> TrainingDiverged:
        """The error for step `step`, whose loss `loss` was not finite."""
        return self.diverged(step, f"the loss is {loss}", latest_checkpoint)

    def check_state(self, step: int, latest_checkpoint: str | None) -> None:
        """Before saving step `step`: every value of E, W and its bias must be finite."""
        if not bool(all_finite(self.variables)):
            raise self.diverged(step, "a value of E or W is not finite", latest_checkpoint)

    def diverged(self, step: int, value: str, latest_checkpoint: str | None) -> TrainingDiverged:
        training = self.config.training
        causes = f"a --learning-rate too high ({training.learning_rate:g} here; {STABLE_RANGE})"
        defaults = TrainingConfig()
        if (training.max_row_updates, training.max_noise_row_updates) != (defaults.max_row_updates,
                                                                            defaults.max_noise_row_updates):
            causes += (f", or row bounds raised in config.json (training.max_row_updates {training.max_row_updates:g} "
                       f"and max_noise_row_updates {training.max_noise_row_updates:g}; defaults "
                       f"{defaults.max_row_updates:g} and {defaults.max_noise_row_updates:g})")
        kept = (f"the latest checkpoint, {latest_checkpoint}, holds finite values: resume from it with a lower "
                f"--learning-rate (default {defaults.learning_rate:g})" if latest_checkpoint
                else "no checkpoint was written")
        return TrainingDiverged(f"training diverged at step {step:,}: {value}; stopped without saving. "
                                f"The usual cause is {causes}; {kept}")


# What the stability sweep (tests/test_stability.py) and the gcide runs (docs/training.md) found stable.
STABLE_RANGE = "measured stable up to 0.1"


@tf.function
def all_finite(variables: list[tf.Variable]) -> tf.Tensor:
    """Whether every value of every variable is finite (one pass over each: milliseconds, once per checkpoint)."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(variable)) for variable in variables])
