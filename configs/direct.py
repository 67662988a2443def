"""Direct: CNNSA tower + 3 dense layers regress the score from the performance alone
(paper 3.2.1, Figure 2; Table 2 row "Direct", no reference).

Trained with MSE on score / model.score_scale over every clip whose performance has
a human score (input_pipeline.loader.ClipLoader). Variants: "" | small | demo | ssvd | real
(configs/variants.py).
"""

from configs import base, variants

# Demo / SSVD learning rate for the regression systems (measured on the demo corpus,
# BUILD_NOTES.md).
REGRESSION_DEMO_LR = 3e-4


def get_config(arg: str | None = None, *, system: str = "direct",
               file: str = "configs/direct.py"):
  """Returns the Direct config (also the base of Delta: `system='delta'`).

  Raises:
    ValueError: unknown or conflicting variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = system
  c.data.reference = "original"
  size, _ = variants.apply_variants(c, arg, file=file)
  if size in ("demo", "ssvd", "real"):
    c.train.learning_rate = REGRESSION_DEMO_LR
  return c
