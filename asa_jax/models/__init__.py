"""Models: the CNNSA tower (paper 3.2) and the triplet system (paper 3.2.3)."""

from asa_jax.models.cnnsa import BertLayer, CNNSATower, ResBlock, output_frames
from asa_jax.models.triplet import TripletModel, build_model, build_tower

__all__ = ["BertLayer", "CNNSATower", "ResBlock", "TripletModel", "build_model",
           "build_tower", "output_frames"]
