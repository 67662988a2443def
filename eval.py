"""Evaluates a trained system on a manifest: Pearson's r per song and Mix (Table 2).

  python eval.py --config=configs/rori.py:demo --workdir=runs/rori \
      --manifest=demo_data/manifest.csv --output_dir=runs/rori/eval --split=test

Everything testable lives in `asa_jax.evaluation.run.evaluate`.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from asa_jax import logs
from asa_jax.evaluation import run

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "System config file, e.g. configs/rori.py:demo.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Training workdir (checkpoints and stats.json).")
_MANIFEST = flags.DEFINE_string(
    "manifest", None, "Manifest CSV of the performances to score.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where scores.csv, pearson.json, table.md, the scatter PNG "
    "and the feature records (OUTPUT_DIR/records) go.")
_SPLIT = flags.DEFINE_enum(
    "split", "all", ["all", *run.SPLITS],
    "Manifest split to score; 'all' scores every performance of the manifest.")

flags.mark_flags_as_required(["config", "workdir", "manifest", "output_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  logs.quiet_libraries()
  logging.info("JAX process %d / %d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  run.evaluate(_CONFIG.value, _WORKDIR.value, _MANIFEST.value, _OUTPUT_DIR.value,
               split=_SPLIT.value)


if __name__ == "__main__":
  app.run(main)
