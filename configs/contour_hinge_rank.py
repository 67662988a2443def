"""Contour hinge rank (issue 18): asa_jax/systems/contour.py, variants "" | small
(configs/contour.py): `python train.py --config=configs/contour_hinge_rank.py:small --workdir=W`.
"""

from configs import contour


def get_config(arg: str | None = None):
  """The contour_hinge_rank config (configs/contour.py).

  Raises:
    ValueError: an unknown variant.
  """
  c = contour.get_config("contour_hinge_rank", arg, file="configs/contour_hinge_rank.py")
  c.loss.margin = 0.1  # Lee & Nam's alpha.
  c.loss.negatives = 4
  return c
