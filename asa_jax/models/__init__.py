"""Flax modules: the CNNSA tower (paper 3.2), the triplet model (3.2.3), the regression
model of Direct (3.2.1) and Delta (3.2.2), and EmbDirect's (3.2.4). Which system uses
which, with which loss, is asa_jax.systems (`asa_jax.systems.build_model(config)`)."""

from asa_jax.models.cnnsa import (BertLayer, CNNSATower, ResBlock, TimePooling,
                                  output_frames)
from asa_jax.models.embdirect import EmbDirectModel
from asa_jax.models.regression import RegressionModel, ScoreHead
from asa_jax.models.triplet import TripletModel

__all__ = ["BertLayer", "CNNSATower", "EmbDirectModel", "RegressionModel", "ResBlock",
           "ScoreHead", "TimePooling", "TripletModel", "output_frames"]
