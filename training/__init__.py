"""Offline training driver of the `nmt` library: config, data, trainer, checkpoints, distributed."""
