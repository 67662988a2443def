"""Seshadri & Lerch's weighted contrastive regression (asa_jax/systems/
contrastive_regression.py): the loss against a hand computation, real training steps
of the joint and two-step trainings."""

import jax
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.systems import contrastive_regression as cr
from asa_jax.train import restore_for_inference
from asa_jax.train import train_and_evaluate
from tests import fake_loader


def test_weighted_contrastive_loss_matches_hand_computation():
  e = np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 4.0], [1.0, 0.0]], np.float32)
  scores = np.array([10.0, 15.0, 90.0, 50.0], np.float32)  # Classes 0, 0, 4, 2.
  mask = np.array([1.0, 1.0, 1.0, 0.0], np.float32)  # Row 3 is padding.
  s = 0.5
  classes = [0, 0, 4]
  total, n = 0.0, 0
  for i in range(3):
    for j in range(i + 1, 3):
      d = float(np.linalg.norm(e[i] - e[j]))
      if classes[i] == classes[j]:
        total += 0.5 * d * d
      else:
        total += 0.5 * max(0.0, abs(classes[i] - classes[j]) * s - d) ** 2
      n += 1
  # Pairs: (0,1) same class, d = 0.5 -> 0.125; (0,2) m = 2, d = 5 -> 0; (1,2)
  # m = 2, d = 4.5 -> 0.
  assert total / n == pytest.approx(0.125 / 3)
  got = cr.weighted_contrastive_loss(e, scores, mask, classes=5, margin=s)
  np.testing.assert_allclose(got, total / n, rtol=1e-5)
  # A far pair of different classes inside the margin is pushed apart.
  close = np.array([[0.0, 0.0], [0.1, 0.0]], np.float32)
  got = cr.weighted_contrastive_loss(close, np.array([5.0, 95.0]), np.ones(2),
                                     classes=5, margin=1.0)
  np.testing.assert_allclose(got, 0.5 * (4.0 - 0.1) ** 2, rtol=1e-5)


def test_joint_and_two_step_training(tmp_path):
  c = fake_loader.tiny_config("small", "contrastive_regression", blocks=4)
  c.train.max_epochs = 1
  system = systems.get(c)
  assert (system.stage, system.classes, system.weight) == ("joint", 5, 1.0)
  joint = train_and_evaluate(c, str(tmp_path / "joint"),
                             loader_factory=fake_loader.factory(c))
  assert np.isfinite(joint["train_loss"]) and joint["step"] == 3
  # Two-step: an encoder run, then a head run on its frozen tower.
  c.contrastive.stage = "encoder"
  train_and_evaluate(c, str(tmp_path / "enc"), loader_factory=fake_loader.factory(c))
  _, enc = restore_for_inference(c, str(tmp_path / "enc"))
  head = c.copy_and_resolve_references()
  head.contrastive.stage = "head"
  with pytest.raises(ValueError, match="encoder_workdir"):
    train_and_evaluate(head, str(tmp_path / "bad"),
                       loader_factory=fake_loader.factory(head))
  head.contrastive.encoder_workdir = str(tmp_path / "enc")
  train_and_evaluate(head, str(tmp_path / "head"),
                     loader_factory=fake_loader.factory(head))
  _, trained = restore_for_inference(head, str(tmp_path / "head"))
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)),
                      jax.device_get(enc["params"]["tower"]),
                      jax.device_get(trained["params"]["tower"]))
  assert all(jax.tree.leaves(same))  # The encoder stayed frozen...
  assert not np.allclose(  # ...and the head trained.
      jax.device_get(trained["params"]["head"]["dense_3"]["kernel"]),
      jax.device_get(enc["params"]["head"]["dense_3"]["kernel"]))
  stats = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)),
                       jax.device_get(enc["batch_stats"]["tower"]),
                       jax.device_get(trained["batch_stats"]["tower"]))
  assert all(jax.tree.leaves(stats))
  c.contrastive.stage = "both"
  with pytest.raises(ValueError, match="stage"):
    systems.get(c)
