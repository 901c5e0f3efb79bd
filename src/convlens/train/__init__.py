"""Training: the recipe (TrainConfig), the engine, checkpoints, and whole runs."""

from convlens.train.config import DataConfig, TrainConfig

__all__ = ["DataConfig", "TrainConfig"]
