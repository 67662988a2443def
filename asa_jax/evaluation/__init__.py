"""Evaluation (paper 3.2.3, 4): clip -> performance scores, Pearson's r per song and
Mix, Table 2-shaped outputs and figures.

  scoring.py  score_performances / embed_clips / aggregate_scores (paper 3.2.3)
  pearson.py  pearson / correlate: r per song and pooled (Table 2), None + reason
  report.py   scores.csv, pearson.json, table.md (atomic writes)
  plots.py    predicted-vs-human scatter PNG
  run.py      evaluate(config, workdir, manifest, output_dir, split) for eval.py;
              report_systems(output_dir, {system: scores}, references)
"""
