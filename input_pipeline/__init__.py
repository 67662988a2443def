"""Manifest -> segments -> feature records -> batches (paper 3.3, Figure 5).

  manifest.py     the corpus manifest CSV: validated rows, extra columns, split copies
  segments.py     voice activity, 3 s segment grid, key and DTW alignment
  records.py      the record format: ArrayRecord shards, their index, the one reader,
                  the build fingerprint, normalisation statistics
  shard.py        builds one shard (a Dask task)
  build.py        the feature build on Dask: plan shards, run them, report
  dask_tasks.py   independent tasks on Dask: retries, dead workers, cluster address
  numba_warm.py   fills numba's cache before the build's workers start
  pairing.py      which records make a training row (paper 3.3 pairing), plain numpy
  model_input.py  stored clip -> model input (key shift, channels, normalisation)
  loader.py       the Grain pipeline: batches per process, checkpointable
  corpora/        corpus generators (demo, real voices, degradations, SSVD, folds)
"""
