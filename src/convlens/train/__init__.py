"""Training: the recipe (TrainConfig), the engine, checkpoints, and whole runs."""

from convlens.recipe import DataConfig, TrainConfig

__all__ = ["DataConfig", "TrainConfig"]
