"""Experiments: sweeps over spec and recipe edits, their sweet spot, and overfitting.

    >>> from convlens.experiments.sweep import sweep
    >>> result = sweep("cnn", {"filters": [16, 32, 64]}, config=TrainConfig(epochs=1))
    >>> result.sweet_spot                      # e.g. "filters=32"

| module | one concept |
| --- | --- |
| ``grid`` | ``--vary`` axes as edits to a spec and a recipe; names and hashes of points |
| ``sweep`` | train every point x repeats into one folder; results, trials, sweet spot |
| ``executors`` | where trials run: this process or a local process pool |
| ``ray_executor`` | trials as Ray tasks (optional extra) |
| ``resources`` | how many workers and threads the machine affords |
| ``pareto`` | the Pareto front, the sweet spot and their figure |
| ``overfit`` | best epoch, final gap, "did test accuracy fall?" from a run's history |

The package imports no torch until a sweep runs, so ``convlens --help`` stays fast. (The
``sweep`` function is not re-exported here: it would hide the ``sweep`` module.)
"""

from convlens.experiments.grid import AXES, GridPoint, expand, parse_vary
from convlens.experiments.overfit import Overfitting, overfitting
from convlens.experiments.pareto import pareto_front, sweet_spot

__all__ = [
    "AXES",
    "GridPoint",
    "Overfitting",
    "expand",
    "overfitting",
    "pareto_front",
    "parse_vary",
    "sweet_spot",
]
