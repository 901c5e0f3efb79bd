"""Training: the recipe (TrainConfig), the engine, checkpoints, and whole runs."""

from convlens.data.config import DataConfig
from convlens.recipe import TrainConfig

__all__ = ["DataConfig", "TrainConfig"]
