"""Rori: triplet network, reference = original singing (paper 3.2.3, Table 2).

Variants (configs/variants.py), comma-separated: `configs/rori.py` (paper values),
`:small` (a narrow tower and a larger learning rate for CPU runs), `:demo` (`small` on
the generated demo corpus), `:ssvd` (`small` on the SSVD manifest made by
`python -m input_pipeline.corpora.ssvd`), plus one channel-ablation word (paper 4.5):
`ablation_spec`, `ablation_spec_f0`, `ablation_spec_f0_chroma`, e.g.
`configs/rori.py:demo,ablation_spec`.
"""

from configs import base, variants


def get_config(arg: str | None = None):
  """Returns the Rori config for the variant words in `arg` (see module doc).

  Raises:
    ValueError: unknown or conflicting variant words (configs/variants.py).
  """
  c = base.get_config()
  c.system = "rori"
  c.data.reference = "original"
  variants.apply_variants(c, arg, file="configs/rori.py", ablations=True)
  return c
