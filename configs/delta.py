"""Delta: the Direct network on (reference features - performance features)
(paper 3.2.2, Figure 3; Table 2 row "Delta", reference = original singing).

The difference is taken on the normalised model inputs (both clips standardised with
the training statistics, the performance key-shifted first when data.key_align is
'shift'), inside the model: input = reference - performance. Variants: "" | small |
demo | ssvd (configs/variants.py).
"""

from configs import direct


def get_config(arg: str | None = None):
  """Returns the Delta config (Direct's fields, system 'delta').

  Raises:
    ValueError: unknown or conflicting variant words (configs/variants.py).
  """
  return direct.get_config(arg, system="delta", file="configs/delta.py")
