"""Training: mesh/sharding, train state, jitted steps, checkpoints, the epoch loop."""

from asa_jax.train.checkpoint import restore_for_inference
from asa_jax.train.loop import prepare_records, train_and_evaluate

__all__ = ["prepare_records", "restore_for_inference", "train_and_evaluate"]
