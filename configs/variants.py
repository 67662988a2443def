"""Shared config variants of every learned system (`--config=configs/<system>.py:ARG`).

ARG is a comma-separated list of words (spaces ignored), e.g. "demo,ablation_spec":
  * at most one size/corpus word:
      ""     paper values (section 3.4: Adam lr 1e-6, batch 128, 200 epochs, patience 5);
      small  a narrow CNNSA tower (16..32 conv channels, 1 attention layer, 32-d
             embedding), batch 32, 30 epochs, tiny CREPE: CPU-sized runs;
      demo   small + the generated demo corpus (demo_data/manifest.csv);
      ssvd   small + the SSVD manifest (DTW alignment, key shift, poor < 55);
      real   small + the real-voice corpus (python -m input_pipeline.corpora.real
             --out_dir=data/real): DTW alignment, key shift, model selection by the
             validation Pearson's r of performance scores, 'gap' triplet pairing;
  * at most one ablation word (paper 4.5, Rori only; the full 5-channel run is the
    plain config):
      ablation_spec            features.channels ("spec",), name "rori_spec";
      ablation_spec_f0         ("spec", "f0"), name "rori_spec_f0";
      ablation_spec_f0_chroma  ("spec", "f0", "chroma"), name "rori_spec_f0_chroma".

System files apply these with `apply_variants` and then set what is their own (for
example the demo learning rate, which differs per system).
"""

import ml_collections

from asa_jax import ablations as ablations_lib

SIZE_WORDS = ("small", "demo", "ssvd", "real")
CORPUS_WORDS = ("demo", "ssvd", "real")  # small + a corpus: they share one block.

DEMO_MANIFEST = "demo_data/manifest.csv"
SSVD_MANIFEST = "data/ssvd/manifest.csv"
REAL_MANIFEST = "data/real/manifest.csv"


def parse(arg: str | None, *, file: str, ablations: bool = False
          ) -> tuple[str, str]:
  """Splits a variant argument into (size word or "", ablation word or "").

  Args:
    arg: the text after ':' in `--config=FILE:ARG` (None or "" = paper values).
    file: the config file, named in error messages (e.g. "configs/rori.py").
    ablations: whether the ablation words are valid for this file.

  Raises:
    ValueError: unknown word, or two size words / two ablation words; the message
      names `file` and lists the valid words.
  """
  valid = SIZE_WORDS + (tuple(ablations_lib.ABLATIONS) if ablations else ())
  words = [w.strip() for w in (arg or "").split(",") if w.strip()]
  size = [w for w in words if w in SIZE_WORDS]
  abl = [w for w in words if ablations and w in ablations_lib.ABLATIONS]
  unknown = [w for w in words if w not in valid]
  if unknown or len(size) > 1 or len(abl) > 1:
    raise ValueError(
        f"{file}: bad variant {arg!r} (unknown {unknown}, or more than one size / "
        f"ablation word); valid words: {', '.join(valid)} (comma-separated, at most "
        "one of " + "/".join(SIZE_WORDS) + (" and one ablation_*" if ablations else "")
        + ")")
  return (size[0] if size else ""), (abl[0] if abl else "")


def apply_variants(c: ml_collections.ConfigDict, arg: str | None, *, file: str,
                   ablations: bool = False) -> tuple[str, str]:
  """Applies the shared size/corpus and ablation variants to `c` in place.

  Sets the small tower and training sizes for small/demo/ssvd, the demo or SSVD
  manifest and data options, and for an ablation word features.channels and name.
  Learning rates and dropout for demo/ssvd are the Rori values (lr 3e-4, dropout 0.3);
  the regression configs override them.

  Returns:
    (size word, ablation word) as parsed by `parse`.

  Raises:
    ValueError: see `parse`.
  """
  size, ablation = parse(arg, file=file, ablations=ablations)
  if size:
    c.features.crepe_capacity = "tiny"
    c.model.conv_channels = (16, 16, 32, 32, 32, 32, 32)
    c.model.attention_layers = 1
    c.model.attention_hidden = 32
    c.model.attention_heads = 4
    c.model.attention_mlp = 64
    c.model.embedding_dim = 32
    c.model.head_hidden = (32, 16)
    c.train.learning_rate = 1e-3
    c.train.global_batch_size = 32
    c.train.max_epochs = 30
    # A small tower can sit at loss = margin (cos(a,p) = cos(a,n)) for several epochs
    # before it starts to separate: on the demo corpus Rori Spec+f0 stopped at epoch 6
    # with patience 5, and with 12 began learning at epoch 7 (BUILD_NOTES.md).
    c.train.patience = 10
  if size in CORPUS_WORDS:
    c.data.build_workers = 2  # The feature build is the longest part of the demo.
    # Small corpora: small shards, so that both workers have shards to build.
    c.data.shard_performances = 8
    # Tuned for Rori on the generated corpus (validation songs): the paper's lr 1e-6
    # barely moves a small tower in the CPU budget, 1e-3 overfits the 8 training
    # songs in 4 epochs; lr 3e-4 with dropout 0.3 gave test Mix r 0.61 / 0.77.
    c.train.learning_rate = 3e-4
    c.model.dropout = 0.3
  if size == "demo":
    c.data.manifest = DEMO_MANIFEST
  elif size == "ssvd":
    # Sight-singing (a cappella, own tempo, own key): align by DTW and move the
    # performance to the reference key. With 80/40 only one training melody has a
    # good/poor pair (BUILD_NOTES.md), so poor = score < 55.
    c.data.manifest = SSVD_MANIFEST
    c.data.alignment = "dtw"
    c.data.key_align = "shift"
    c.data.poor_threshold = 55.0
  elif size == "real":
    # Real voices with labelled degradations plus real SSVD (input_pipeline/
    # corpora/real.py): other singers' references (own tempo, some in their own key)
    # need DTW alignment and key shift. The validation triplet loss did not track the
    # test r (BUILD_NOTES.md), so early stopping and 'best' follow the validation
    # Pearson's r of the performance scores.
    c.data.manifest = REAL_MANIFEST
    c.data.alignment = "dtw"
    c.data.key_align = "shift"
    c.train.selection_metric = "pearson"
    # K versions of each recording: rank every two versions >= 25 points apart, not
    # only good (>= 80) against poor (< 40): 2,961 instead of 446 training triplets
    # per epoch, test per-source Spearman 0.71 instead of 0.59 (BUILD_NOTES.md).
    c.data.pairing = "gap"
  if ablation:
    c.features.channels, c.name, _ = ablations_lib.ABLATIONS[ablation]
  return size, ablation
