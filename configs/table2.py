"""Suites of the Table 2 experiment (paper 4, Table 2; Figures 6 and 7).

`configs/table2.py:SUITE`, SUITE one of:
  demo   the generated demo corpus (demo_data/manifest.csv), small CPU configs;
  ssvd   SSVD (data/ssvd/manifest.csv from `python -m input_pipeline.corpora.ssvd`), small
         configs with DTW alignment and key shift; no Racc (SSVD has no
         accompaniment);
  paper  the paper's values (configs without a variant word); give --manifest.

Fields:
  suite          the suite name.
  manifest       default manifest ("" = must be given on the command line).
  split          evaluated split ('test', paper 4).
  systems        learned systems in training order, (name, config spec) pairs: Rori
                 first (EmbDirect freezes Rori's tower, paper 3.2.4), then Racc,
                 Direct, Delta, EmbDirect, the other papers' systems (hinge_rank,
                 siamese, contrastive_regression), then the channel ablations
                 (paper 4.5).
  rori_spec      the Rori spec EmbDirect's frozen tower comes from.
  baselines      rule-based baselines (paper 4.2; asa_jax.baselines names), or "all".
  baseline_crepe_capacity  CREPE model of the baselines' f0 ('tiny' on CPU suites).
  figure6_system the triplet system of Figure 6 (paper 4.4).
  figure7_rows   Figure 7's bars, in order: Spec, Spec+f0, Spec+f0+chroma, all 5.
"""

import ml_collections

from asa_jax import ablations
from asa_jax.baselines import names as baseline_names

SUITES = ("demo", "ssvd", "paper")
FIGURE7_ROWS = ablations.FIGURE7_ROWS


def _spec(system: str, words: tuple[str, ...]) -> str:
  words = tuple(w for w in words if w)
  return f"configs/{system}.py" + (":" + ",".join(words) if words else "")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the suite `arg` (demo | ssvd | paper).

  Raises:
    ValueError: unknown suite.
  """
  suite = (arg or "").strip()
  if suite not in SUITES:
    raise ValueError(f"configs/table2.py: unknown suite {arg!r}; use one of "
                     f"{', '.join(SUITES)}")
  size = "" if suite == "paper" else suite
  # The paper's systems, then the other papers' (Lee & Nam 2019, the singer-embedding
  # study, Seshadri & Lerch 2021).
  learned = ["rori", "racc", "direct", "delta", "embdirect", "hinge_rank", "siamese",
             "contrastive_regression"]
  if suite == "ssvd":
    learned.remove("racc")  # SSVD has no accompaniment tracks.
  systems = [(name, _spec(name, (size,))) for name in learned]
  systems += [(f"rori_{ab}", _spec("rori", (size, f"ablation_{ab}")))
              for ab in ("spec", "spec_f0", "spec_f0_chroma")]
  c = ml_collections.ConfigDict()
  c.suite = suite
  c.manifest = {"demo": "demo_data/manifest.csv", "ssvd": "data/ssvd/manifest.csv",
                "paper": ""}[suite]
  c.split = "test"
  c.systems = tuple(systems)
  c.rori_spec = _spec("rori", (size,))
  c.baselines = baseline_names.ALL
  c.baseline_crepe_capacity = "full" if suite == "paper" else "tiny"
  c.figure6_system = "rori"
  c.figure7_rows = FIGURE7_ROWS
  return c
