"""Experiment configs (`ml_collections`), loaded by `--config=configs/<file>.py[:ARG]`.

base.py holds every field with the paper's value; each system has one file that
overrides a few (rori, racc, direct, delta, embdirect, hinge_rank, siamese,
contrastive_regression); variants.py holds the size variants (small, demo, ssvd,
real) and the channel ablations; table2.py the Table 2 suites.
"""
