"""Evaluation (paper 3.2.3, 4): clip -> performance scores, Pearson's r per song and
Mix, Table 2-shaped outputs and figures.

  scoring.py            score_performances / embed_clips / aggregate_scores (3.2.3)
  pearson.py            pearson / correlate: r per song and pooled (Table 2)
  bootstrap.py          95% bootstrap CI of Pearson's r (performances resampled)
  judges.py             inter-judge agreement: mean pairwise Pearson's r (paper 4.1)
  report.py             scores.csv (write and read), pearson.json, table.md; Table 2
                        row names, groups and order
  plots.py              predicted-vs-human scatter PNG
  figures.py            Figure 6 (PCA of clip embeddings, 4.4), Figure 7 (4.5)
  calibration.py        the monotone raw -> 0..100 map (calibration.json)
  validation_calibration.py  calibration.json at the end of training
  records_reuse.py      when evaluation reuses training records, else where it builds
  embedding_metrics.py  the other papers' metrics: embedding retrieval, R^2
  ranking.py            degradation ranking: Spearman's rho per source recording
  crossval.py           pooled Pearson's r of cross-validation folds
  run.py                the driver: evaluate(...) for eval.py, evaluate_systems(...)
                        for several learned systems and baselines
"""
