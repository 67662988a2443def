"""Contour delta (issue 18): asa_jax/systems/contour.py, variants "" | small
(configs/contour.py): `python train.py --config=configs/contour_delta.py:small --workdir=W`.
"""

from configs import contour


def get_config(arg: str | None = None):
  """The contour_delta config (configs/contour.py).

  Raises:
    ValueError: an unknown variant.
  """
  c = contour.get_config("contour_delta", arg, file="configs/contour_delta.py")
  return c
