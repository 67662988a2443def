"""Lee & Nam (2019): triplet towers with a hinge rank loss over K negatives.

Same towers, data and variants as Rori (configs/rori.py; reference = the original
singing); loss.margin alpha = 0.1 and loss.negatives K = 4 (Lee & Nam's grid search).
Variants: "" | small | demo | ssvd | real (configs/variants.py).
"""

from configs import base, variants


def get_config(arg: str | None = None):
  """Returns the hinge-rank config for the variant words in `arg`.

  Raises:
    ValueError: unknown variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = "hinge_rank"
  c.data.reference = "original"
  c.loss.margin = 0.1
  c.loss.negatives = 4
  variants.apply_variants(c, arg, file="configs/hinge_rank.py")
  return c
