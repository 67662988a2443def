"""A contour system's workdir through `Assessor.from_workdir` and `asa-score
--workdir` (issue 19: "`--workdir` still selects any trained system"): its tower
scores a generated pair exactly as the comparator does on the same contours, a
missing calibration is one error naming the file and the command that writes it,
and the evaluation's calibration is fitted on the MAST selection rows' grades only."""

import json
import math

import numpy as np
import pytest
import soundfile as sf

from asa_jax import config_specs
from asa_jax.assess import Assessor, NotSameMelodyError, cli, contour_comparator
from asa_jax.evaluation import calibration
from asa_jax.evaluation import contour_scores
from tests import assess_audio
from tests import contour_worker

SR = assess_audio.SAMPLE_RATE
FRAMES = 160


def _workdir(path):
  """A tiny contour Rori workdir: config.json and the initial train state saved as
  its best checkpoint (scoring needs no trained weights)."""
  from asa_jax.train import loop  # pylint: disable=g-import-not-at-top
  from asa_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from asa_jax.train.checkpoint import Checkpoints  # pylint: disable=g-import-not-at-top
  config = contour_worker.tiny_config("contour_rori", FRAMES)
  _, state = loop.init_state(config, mesh_lib.make_mesh())
  ckpts = Checkpoints(str(path))
  try:
    ckpts.save_best(state, loop.initial_meta())
  finally:
    ckpts.close()
  config_specs.save_workdir_config(config, str(path))
  return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = tmp_path_factory.mktemp("contour")
  _workdir(path)
  calibration.save(calibration.fit([-1.0, 0.0, 1.0], [0.0, 50.0, 100.0]),
                   path / calibration.FILENAME)
  return path


@pytest.fixture(scope="module")
def reference():
  return assess_audio.note_melody(seed=1)


@pytest.mark.timeout(600)
def test_a_contour_workdir_scores_as_its_comparator(workdir, reference):
  assessor = Assessor.from_workdir(workdir)
  scorer = assessor._scorer  # pylint: disable=protected-access
  assert isinstance(scorer, contour_comparator.ContourScorer)
  assert scorer.unit == "cosine similarity" and scorer.comparator.n_towers == 1
  perf = assess_audio.note_melody(detune={4: 60.0}, seed=2)
  result = assessor.assess((perf, SR), (reference, SR))
  # The same raw score as the comparator of the workdir on the same contours.
  direct = contour_comparator.ContourComparator.from_workdir(str(workdir))
  perf_c, ref_c = scorer.contours(perf), scorer.contours(reference)
  want = direct.score(perf_c.f0_hz, ref_c.f0_hz)
  assert math.isfinite(want)
  assert result.raw == pytest.approx(want, abs=1e-5)
  assert result.score == pytest.approx(float(assessor.calibration(want)))
  assert result.system == "contour_rori" and result.calibration == "linear"
  # The generic feedback paths: notes, alignment confidence, JSON.
  assert result.notes and result.alignment is not None and result.alignment.same_melody
  assert json.loads(json.dumps(result.to_dict()))["raw"] == pytest.approx(
      result.raw, abs=1e-4)
  with pytest.raises(NotSameMelodyError):
    assessor.assess((assess_audio.other_melody(), SR), (reference, SR))


def test_a_contour_workdir_without_calibration_names_the_command(tmp_path):
  _workdir(tmp_path)
  with pytest.raises(FileNotFoundError) as info:
    Assessor.from_workdir(tmp_path)
  message = str(info.value)
  assert str(tmp_path / calibration.FILENAME) in message
  assert f"asa_jax.evaluation.contour_scores --workdir={tmp_path}" in message


@pytest.mark.timeout(600)
def test_asa_score_workdir_scores_a_contour_system(workdir, reference, tmp_path,
                                                   capsys):
  ref, perf = tmp_path / "ref.wav", tmp_path / "perf.wav"
  sf.write(ref, reference, SR)
  sf.write(perf, assess_audio.note_melody(detune={4: 60.0}, seed=3), SR)
  out = tmp_path / "out.json"
  code = cli.main([f"--workdir={workdir}", f"--reference={ref}",
                   f"--performance={perf}", f"--json={out}",
                   f"--reference-cache={tmp_path / 'cache'}"])
  printed = capsys.readouterr().out
  assert code == cli.EXIT_OK, printed
  assert printed.startswith("score ") and "contour_rori" in printed
  assert json.loads(out.read_text())["system"] == "contour_rori"


def _mast_row(name, selection, score, grade):
  return [name, "m", int(selection), score, grade, int(grade >= 2.5)]


def test_the_calibration_is_fitted_on_the_selection_rows_grades():
  rng = np.random.default_rng(0)
  sel = [_mast_row(f"s{i}", True, s, 1.0 + 1.5 * (s + 1.0))
         for i, s in enumerate(rng.uniform(-1, 1, 40))]
  # Held-out rows with another relation: they must not move the fit.
  held = [_mast_row(f"h{i}", False, s, 4.0 - 1.5 * (s + 1.0))
          for i, s in enumerate(rng.uniform(-1, 1, 40))]
  ungraded = [_mast_row("u", True, 0.3, math.nan), _mast_row("v", True, math.nan, 2.0)]
  cal = contour_scores.fit_calibration(sel + held + ungraded, source="test")
  assert cal.human and cal.n == 40 and cal.method == contour_scores.CALIBRATION_METHOD
  # Grades 1..4 -> 0..100: the selection rows' exact line.
  np.testing.assert_allclose(cal([-1.0, 0.0, 1.0]), [0.0, 50.0, 100.0], atol=1e-6)
  # Too few graded selection rows: no calibration (none is invented).
  assert contour_scores.fit_calibration(sel[:contour_scores.MIN_CALIBRATION_ROWS - 1]
                                        + held, source="test") is None
