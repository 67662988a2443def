"""Racc: triplet network, reference = accompaniment (paper 3.2.3, Table 2).

Same model and training as Rori (configs/rori.py); the anchor clip is cut from the
manifest's `accompaniment_audio` (data.reference = 'accompaniment'), so Racc needs
its own records. Variants: "" | small | demo | real (configs/variants.py). `ssvd`
raises: SSVD has no accompaniment tracks. With `real`, only the MIR-1K rows have an
accompaniment (the SSVD rows are skipped and reported by the build), and the anchor is
cut at the performance's own position (the accompaniment is the clip's own backing
track: no DTW, no key shift).
"""

from configs import base, variants


def get_config(arg: str | None = None):
  """Returns the Racc config for the variant words in `arg`.

  Raises:
    ValueError: unknown variant words, or 'ssvd' (no accompaniment in SSVD).
  """
  c = base.get_config()
  c.system = "racc"
  c.data.reference = "accompaniment"
  size, _ = variants.apply_variants(c, arg, file="configs/racc.py")
  if size == "ssvd":
    raise ValueError("configs/racc.py:ssvd: the SSVD corpus has no accompaniment "
                     "tracks, so Racc cannot run on it (paper Table 2 row omitted)")
  if size == "real":
    c.data.alignment = "none"
    c.data.key_align = "none"
  return c
