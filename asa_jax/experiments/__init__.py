"""Experiments that chain training and evaluation (paper 4: Table 2, Figures 6-7).

  eval_plan.py  eval.py's --system / --system_override / --suite flags -> an
             EvalPlan (learned systems, baselines, manifest, outputs) and its run
  table2.py  `python -m asa_jax.experiments.table2 --suite=demo --workdir_root=...`:
             train every learned system of a suite (configs/table2.py), then
             evaluate them all with the baselines; resumable

Config specs and overrides as strings: asa_jax/config_specs.py.
"""
