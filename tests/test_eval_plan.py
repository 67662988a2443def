"""asa_jax.experiments.eval_plan: eval.py's flags -> what is evaluated."""

import os

import pytest

from asa_jax.baselines import names as baseline_names
from asa_jax.experiments import eval_plan


def test_parse_system_names_overrides_and_errors():
  overrides = eval_plan.parse_overrides(["spec:train.max_steps=3",
                                         "rori:eval.batch_size=8"])
  named = eval_plan.parse_system("spec=configs/rori.py:demo,ablation_spec@runs/x",
                                 overrides)
  assert (named.name, named.workdir) == ("spec", "runs/x")
  assert named.config.train.max_steps == 3
  assert tuple(named.config.features.channels) == ("spec",)
  default = eval_plan.parse_system("configs/rori.py:demo@runs/r", overrides)
  assert default.name == "rori" and default.workdir == "runs/r"  # config.system.
  assert default.config.eval.batch_size == 8 and overrides == {}  # Popped once used.
  for bad in ("configs/rori.py:demo", "@w", "configs/rori.py@"):
    with pytest.raises(eval_plan.PlanError, match="SPEC@WORKDIR"):
      eval_plan.parse_system(bad, {})
  with pytest.raises(eval_plan.PlanError, match="NAME:KEY=VALUE"):
    eval_plan.parse_overrides(["train.max_steps=3"])
  with pytest.raises(FileNotFoundError, match="config file 'configs/nope.py' not found"):
    eval_plan.parse_system("configs/nope.py@w", {})


def test_plan_defaults_and_usage_errors(tmp_path):
  p = eval_plan.plan(systems=["configs/direct.py:demo@runs/d"], baselines="all",
                     manifest="m.csv", output_dir="out")
  assert [s.name for s in p.learned] == ["direct"]
  assert p.baselines == list(baseline_names.ALL) and p.split == "all"
  assert p.options == {}
  assert eval_plan.plan(baselines="none", manifest="m", output_dir="o").baselines == []
  with pytest.raises(eval_plan.PlanError, match="unknown system"):
    eval_plan.plan(systems=["configs/direct.py:demo@d"],
                   system_overrides=["rori:train.max_steps=1"], manifest="m",
                   output_dir="o")
  with pytest.raises(eval_plan.PlanError, match="required"):
    eval_plan.plan(systems=["configs/direct.py:demo@d"])
  with pytest.raises(eval_plan.PlanError, match="workdir_root"):
    eval_plan.plan(suite="demo")


def test_plan_of_a_suite(tmp_path):
  root = str(tmp_path / "table2")
  p = eval_plan.plan(suite="demo", workdir_root=root)
  names = [s.name for s in p.learned]
  assert {"rori", "racc", "direct", "delta", "embdirect", "rori_spec"} <= set(names)
  assert p.output_dir == os.path.join(root, "eval") and p.split == "test"
  assert p.manifest.endswith("demo_data/manifest.csv")
  assert set(p.baselines) == set(baseline_names.ALL)
  assert p.options["figure7_rows"][-1] == "rori"
  by_name = {s.name: s for s in p.learned}
  assert by_name["embdirect"].config.embdirect.rori_workdir == os.path.join(
      os.path.abspath(root), "rori")
  assert by_name["rori"].workdir == os.path.join(os.path.abspath(root), "rori")
  # Explicit flags win over the suite's defaults.
  q = eval_plan.plan(suite="demo", workdir_root=root, split="validation",
                     baselines="dtw_pitch", manifest="m.csv", output_dir="o")
  assert (q.split, q.baselines, q.manifest, q.output_dir) == (
      "validation", ["dtw_pitch"], "m.csv", "o")
