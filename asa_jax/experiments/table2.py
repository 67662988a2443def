r"""Trains every learned system of a suite, then evaluates them all (paper Table 2).

  python -m asa_jax.experiments.table2 --suite=demo \
      --manifest=demo_data/manifest.csv --workdir_root=runs/table2

Suites are in configs/table2.py (demo | ssvd | paper, or any `PATH:ARG` of that
shape). For each learned system, in the suite's order (Rori before EmbDirect, which
freezes Rori's tower), `train.py` runs in a subprocess (a fresh JAX per system, its
output in ROOT/NAME/train.log) with

  --config=SPEC --workdir=ROOT/NAME --config.data.manifest=MANIFEST
  --config.data.records_dir=ROOT/records_<data.reference>   (shared feature build)
  [embdirect: --config.embdirect.rori_workdir=ROOT/rori
              --config.embdirect.rori_config=<the suite's rori spec>]
  [--config.KEY=VALUE for every --extra_overrides=KEY=VALUE]

Then `asa_jax.evaluation.run.evaluate_systems` scores all trained systems and the
suite's baselines on the manifest's split into ROOT/eval (Table 2 with CIs, the
inter-judge agreement, Figure 6, Figure 7).

Resume rules: a system whose train.py exited 0 gets ROOT/NAME/DONE (JSON: spec,
overrides, time; written atomically) and is not trained again; delete DONE to
retrain. An interrupted system restarts train.py in the same workdir, which resumes
from its latest checkpoint; the shared records build resumes too; evaluation
records and baseline contours are cached under ROOT/eval. A system whose training
fails is reported (log path) and the others continue; EmbDirect is skipped when Rori
is not DONE. Exit status 0 when every system trained and every system and baseline
was evaluated, 1 otherwise. ROOT/summary.json lists each system's status.
"""

import shlex

from absl import app
from absl import flags

from asa_jax.experiments import pipeline

_SUITE = flags.DEFINE_string(
    "suite", "demo", "Suite: demo | ssvd | paper (configs/table2.py:SUITE), or a "
    "PATH:ARG spec of a suite file.")
_MANIFEST = flags.DEFINE_string(
    "manifest", None, "Manifest CSV (default: the suite's manifest).")
_WORKDIR_ROOT = flags.DEFINE_string(
    "workdir_root", None, "Root folder: ROOT/<system> workdirs, ROOT/records_<ref>, "
    "ROOT/eval.")
_ONLY = flags.DEFINE_list(
    "only", None, "Train and evaluate only these learned systems (names); "
    "baselines still run unless --baselines=none.")
_BASELINES = flags.DEFINE_string(
    "baselines", None, "Baselines: 'all', 'none' or comma-separated names "
    "(default: the suite's).")
_SKIP_TRAINING = flags.DEFINE_bool(
    "skip_training", False, "Do not train; evaluate the systems that are DONE.")
_SKIP_EVAL = flags.DEFINE_bool("skip_eval", False, "Train only.")
_EXTRA_OVERRIDES = flags.DEFINE_multi_string(
    "extra_overrides", [], "KEY=VALUE config override for every learned system "
    "(passed to train.py as --config.KEY=VALUE and applied at evaluation), e.g. "
    "--extra_overrides=train.max_steps=20.")
_TRAIN_COMMAND = flags.DEFINE_string(
    "train_command", None, "Command that trains one system (default: "
    "'<python> train.py' in the repository root); gets --config, --workdir and "
    "--config.* flags.")
_BOOTSTRAP = flags.DEFINE_integer(
    "bootstrap_samples", None, "CI resamples (default: config.eval.bootstrap_samples).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  if not _WORKDIR_ROOT.value:
    raise app.UsageError("--workdir_root is required")
  from asa_jax import logs  # pylint: disable=g-import-not-at-top
  logs.quiet_libraries()
  suite = pipeline.load_suite(_SUITE.value)
  manifest = _MANIFEST.value or suite.manifest
  if not manifest:
    raise app.UsageError(f"suite {suite.suite!r} has no default manifest; give "
                         "--manifest")
  base = shlex.split(_TRAIN_COMMAND.value) if _TRAIN_COMMAND.value else None

  def log(message: str) -> None:
    print(message, flush=True)

  return pipeline.run_suite(suite, manifest, _WORKDIR_ROOT.value, only=_ONLY.value,
                   baselines=_BASELINES.value, skip_training=_SKIP_TRAINING.value,
                   skip_eval=_SKIP_EVAL.value, extra_overrides=_EXTRA_OVERRIDES.value,
                   train_base=base, bootstrap_samples=_BOOTSTRAP.value, log=log)


if __name__ == "__main__":
  app.run(main)
