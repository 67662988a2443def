r"""Evaluates trained systems and baselines on a manifest: Pearson's r (Table 2).

One system (as before):

  python eval.py --config=configs/rori.py:demo --workdir=runs/rori \
      --manifest=demo_data/manifest.csv --output_dir=runs/rori/eval --split=test

Several systems in one table: repeat --system=[NAME=]SPEC@WORKDIR (NAME defaults to
config.name or config.system; per-system config overrides with
--system_override=NAME:KEY=VALUE) and add baselines by name (--baselines=all or
--baselines=peakBW,dtw_pitch):

  python eval.py --system=rori=configs/rori.py:demo@runs/rori \
      --system=direct=configs/direct.py:demo@runs/direct --baselines=all \
      --manifest=demo_data/manifest.csv --split=test --output_dir=runs/eval

Every system of a Table 2 suite trained by `python -m asa_jax.experiments.table2`
(workdirs ROOT/NAME; --manifest, --baselines and --output_dir default to the
suite's manifest, the suite's baselines and ROOT/eval):

  python eval.py --suite=demo --workdir_root=runs/table2

Outputs: scores.csv, pearson.json, table.md, scatter_<system>.png,
clip_embeddings_<system>.npz, figure6.png, figure7.png (asa_jax.evaluation.run).
A system that cannot be evaluated is reported and skipped; the exit status is 1 when
any system failed (the one-system form raises instead).
"""

import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from asa_jax import logs
from asa_jax.evaluation import run
from asa_jax.experiments import eval_plan
from input_pipeline import manifest as manifest_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "One system: config file, e.g. configs/rori.py:demo.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "One system: training workdir (checkpoints and stats.json).")
_SYSTEMS = flags.DEFINE_multi_string(
    "system", [], "[NAME=]SPEC@WORKDIR of a learned system, e.g. "
    "rori_spec=configs/rori.py:demo,ablation_spec@runs/rori_spec (repeatable).")
_SYSTEM_OVERRIDES = flags.DEFINE_multi_string(
    "system_override", [], "NAME:KEY=VALUE config override of one --system "
    "(repeatable), e.g. embdirect:embdirect.rori_workdir=runs/rori.")
_SUITE = flags.DEFINE_string(
    "suite", None, "Evaluate a Table 2 suite (configs/table2.py: demo | ssvd | "
    "paper) trained under --workdir_root.")
_WORKDIR_ROOT = flags.DEFINE_string(
    "workdir_root", None, "With --suite: the root of the suite's workdirs.")
_BASELINES = flags.DEFINE_string(
    "baselines", None, "Rule-based baselines: all | none | comma-separated names "
    "(default: none; with --suite the suite's).")
_MANIFEST = flags.DEFINE_string(
    "manifest", None, "Manifest CSV of the performances to score (default with "
    "--suite: the suite's manifest).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where scores.csv, pearson.json, table.md, the PNGs and the "
    "feature records go (default with --suite: WORKDIR_ROOT/eval).")
_SPLIT = flags.DEFINE_enum(
    "split", None, ["all", *manifest_lib.SPLITS],
    "Manifest split to score; 'all' scores every performance (default: all; with "
    "--suite the suite's split).")
_BOOTSTRAP = flags.DEFINE_integer(
    "bootstrap_samples", None, "Resamples of the 95% CIs (default: "
    "config.eval.bootstrap_samples, 1000).")


def _multi() -> int:
  try:
    p = eval_plan.plan(
        systems=_SYSTEMS.value, system_overrides=_SYSTEM_OVERRIDES.value,
        suite=_SUITE.value, workdir_root=_WORKDIR_ROOT.value, baselines=_BASELINES.value,
        manifest=_MANIFEST.value, output_dir=_OUTPUT_DIR.value, split=_SPLIT.value)
  except eval_plan.PlanError as e:
    raise app.UsageError(str(e)) from e
  result = eval_plan.execute(p, bootstrap_samples=_BOOTSTRAP.value)
  return 1 if result["failed"] else 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {argv[1:]}")
  logs.quiet_libraries()
  logging.info("JAX process %d / %d, local devices: %s", jax.process_index(),
               jax.process_count(), jax.local_devices())
  if _CONFIG.value is not None:
    if _SYSTEMS.value or _SUITE.value:
      raise app.UsageError("--config (one system) cannot be combined with --system "
                           "or --suite")
    for name in ("workdir", "manifest", "output_dir"):
      if not flags.FLAGS[name].value:
        raise app.UsageError(f"--config needs --{name}")
    run.evaluate(_CONFIG.value, _WORKDIR.value, _MANIFEST.value, _OUTPUT_DIR.value,
                 split=_SPLIT.value or "all")
    return 0
  if not (_SYSTEMS.value or _SUITE.value or _BASELINES.value):
    raise app.UsageError("give --config + --workdir, or --system / --suite / "
                         "--baselines")
  return _multi()


if __name__ == "__main__":
  sys.exit(app.run(main))
