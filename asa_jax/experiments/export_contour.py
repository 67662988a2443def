r"""Exports trained contour towers as the default scorer's contour comparator.

  python -m asa_jax.experiments.export_contour \
      --workdirs=runs/contour/s0,runs/contour/s1,runs/contour/s2 \
      --out=asa_jax/assess/default_scorer/contour

Each workdir is a `train.py --config=configs/contour_rori.py:small` run (the README's
recipe trains seeds 0-2); its best checkpoint's inference variables become one
tower of `asa_jax.assess.contour_comparator` (float32 msgpack, about 290 kB per
`:small` tower). Every workdir must hold the same model and contour input settings
(the first one's config.json is written; the others are compared with it).
"""

from __future__ import annotations

import os

from absl import app
from absl import flags

from asa_jax import config_specs
from asa_jax.assess import contour_comparator

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Contour system workdirs (one tower each).")
_OUT = flags.DEFINE_string("out", "asa_jax/assess/default_scorer/contour",
                           "Comparator folder to write.")
# The fields a tower's scores depend on; seeds and schedules may differ.
SAME_FIELDS = ("system", "model", "contour.window_frames", "contour.aligned",
               "contour.aligned_timing", "contour.stack_reference")


def _field(config, dotted: str):
  for key in dotted.split("."):
    config = config[key]
  return config.to_dict() if hasattr(config, "to_dict") else config


def export(workdirs: list[str], out: str) -> list[str]:
  """Writes the comparator folder `out` from the workdirs' best checkpoints.

  Raises:
    FileNotFoundError: a workdir without config.json or checkpoint.
    ValueError: workdirs whose SAME_FIELDS differ (names the field and workdir).
  """
  from asa_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  configs = [config_specs.load_workdir_config(w) for w in workdirs]
  for w, c in zip(workdirs[1:], configs[1:]):
    for name in SAME_FIELDS:
      if _field(c, name) != _field(configs[0], name):
        raise ValueError(f"{w}: {name} differs from {workdirs[0]}'s")
  variables = [checkpoint.restore_for_inference(c, w)[1]
               for w, c in zip(workdirs, configs)]
  return contour_comparator.save(out, configs[0], variables)


def main(argv):
  del argv
  paths = export(_WORKDIRS.value, _OUT.value)
  size = sum(os.path.getsize(p) for p in paths)
  print(f"wrote {len(paths) - 1} towers and {contour_comparator.CONFIG_FILE} to "
        f"{_OUT.value}: {size} bytes")


if __name__ == "__main__":
  flags.mark_flag_as_required("workdirs")
  app.run(main)
