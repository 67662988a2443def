"""Models: the CNNSA tower (paper 3.2), the triplet systems (3.2.3), Direct (3.2.1),
Delta (3.2.2) and EmbDirect (3.2.4); `build_model(config)` builds any of them."""

from asa_jax.models.cnnsa import BertLayer, CNNSATower, ResBlock, output_frames
from asa_jax.models.embdirect import EmbDirectModel
from asa_jax.models.regression import RegressionModel, ScoreHead
from asa_jax.models.systems import (REGRESSION_SYSTEMS, TRIPLET_SYSTEMS, build_head,
                                    build_model, system_kind)
from asa_jax.models.triplet import TripletModel, build_tower

__all__ = ["BertLayer", "CNNSATower", "EmbDirectModel", "REGRESSION_SYSTEMS",
           "RegressionModel", "ResBlock", "ScoreHead", "TRIPLET_SYSTEMS",
           "TripletModel", "build_head", "build_model", "build_tower", "output_frames",
           "system_kind"]
