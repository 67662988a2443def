"""The score of one performance, shared by learned and rule-based systems.

Plain Python with no third-party import, so that the rule-based baselines
(asa_jax/baselines/) import no jax (issue 17).
"""

from __future__ import annotations

from typing import NamedTuple


class PerformanceScore(NamedTuple):
  """Score of one performance; unpacks as (song_id, performance_id, predicted, human).

  Attributes:
    song_id: song the performance sings.
    performance_id: performance identifier (unique within the song).
    predicted: mean clip score: cosine similarity in [-1, 1] (triplet systems, paper
      3.2.3) or predicted score in score units 0..100 (regression systems).
    human: human score (paper 4.1: mean of the judges), None when the corpus has none.
  """
  song_id: str
  performance_id: str
  predicted: float
  human: float | None
