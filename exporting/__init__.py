"""From a model directory to exports: E and the vocabulary read from the checkpoint, written as a versioned
SavedModel for TF Serving and as word2vec / projector files."""

# What `export.py --format` can write; kept here, free of TensorFlow, so the flags parse before TF loads.
FORMATS = ("savedmodel", "word2vec", "word2vec-binary", "tsv")
