"""From text to training pairs, in tf.data and TensorFlow ops only. Knows nothing of Keras."""
