"""Trains a system: `python train.py --config=configs/rori.py:small --workdir=runs/x`.

Every learned system of Table 2: configs/{rori,racc,direct,delta,embdirect}.py with
comma-separated variant words (configs/variants.py), e.g. `configs/rori.py:demo,
ablation_spec`. EmbDirect needs a trained Rori: `--config=configs/embdirect.py:demo
--config.embdirect.rori_workdir=runs/rori`.

Builds feature records from config.data.manifest when missing, trains with early
stopping, and resumes from <workdir>/checkpoints when run again (paper 3.4).
Multi-process: set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
"""

from absl import app, flags, logging
from ml_collections import config_flags

from asa_jax import logs
from asa_jax.train import distributed

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (configs/<system>.py[:variant]).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (checkpoints, metrics, stats.json).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  logs.quiet_libraries()
  distributed.maybe_initialize()
  import jax  # pylint: disable=g-import-not-at-top
  from asa_jax.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  logging.info("JAX process %d / %d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  logging.info("config:\n%s", FLAGS.config)
  result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  logging.info("finished: %s", result)


if __name__ == "__main__":
  app.run(main)
