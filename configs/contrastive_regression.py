"""Seshadri & Lerch (2021): Direct-style regression with a weighted contrastive loss.

contrastive.stage: 'joint' (L_MSE + w L_C, the default) | 'encoder' then 'head'
(their two-step training: train with stage=encoder in one workdir, then stage=head
with contrastive.encoder_workdir=<that workdir>). C = 5 rating classes, w = 1, s = 1
(asa_jax/systems/contrastive_regression.py). Variants: "" | small | demo | ssvd |
real (configs/variants.py); demo-size variants use the regression learning rate.
"""

from configs import base, variants
from configs.direct import REGRESSION_DEMO_LR


def get_config(arg: str | None = None):
  """Returns the config for the variant words in `arg`.

  Raises:
    ValueError: unknown variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = "contrastive_regression"
  c.data.reference = "original"
  size, _ = variants.apply_variants(c, arg, file="configs/contrastive_regression.py")
  if size in ("demo", "ssvd", "real"):
    c.train.learning_rate = REGRESSION_DEMO_LR
  return c
