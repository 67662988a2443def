"""Siamese contrastive system of the singer-embedding study (asa_jax/systems/siamese.py).

One tower with feed-forward attention pooling (model.pooling = 'attention'), the
contrastive loss with margin m = 1 (loss.margin) on clip pairs of the same / a
different quality class, 1:1. Variants: "" | small | demo | ssvd | real
(configs/variants.py).
"""

from configs import base, variants


def get_config(arg: str | None = None):
  """Returns the siamese config for the variant words in `arg`.

  Raises:
    ValueError: unknown variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = "siamese"
  c.data.reference = "original"
  c.loss.margin = 1.0
  c.model.pooling = "attention"
  variants.apply_variants(c, arg, file="configs/siamese.py")
  return c
