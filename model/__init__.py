"""The skip-gram network and its objectives. Knows nothing of files."""
