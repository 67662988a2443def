"""Evaluation (paper 3.2.3, 4): clip -> performance scores, Pearson's r per song and
Mix, Table 2-shaped outputs and figures.

  scoring.py  score_performances / embed_clips / aggregate_scores (paper 3.2.3)
  pearson.py  pearson / correlate: r per song and pooled (Table 2), None + reason
  report.py   scores.csv, pearson.json, table.md (atomic writes)
  plots.py    predicted-vs-human scatter PNG
  bootstrap.py  95% bootstrap CI of Pearson's r (performances resampled)
  judges.py   inter-judge agreement: mean pairwise Pearson's r (paper 4.1)
  figures.py  Figure 6 (PCA of clip embeddings, 4.4), Figure 7 (ablation bars, 4.5)
  calibration.py  the monotone raw -> 0..100 map (calibration.json): fit/save/load
  validation_calibration.py  calibration.json at the end of training (validation split)
  run.py      evaluate(config, workdir, manifest, output_dir, split) for eval.py;
              evaluate_systems(...) for several learned systems and baselines;
              report_systems(output_dir, {system: scores}, references)
"""
