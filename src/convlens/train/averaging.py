"""An exponential moving average (EMA) of a network's weights over its training steps.

A run with ``TrainConfig.ema = D`` keeps, next to the network it trains, a copy whose
weights follow the trained ones after every optimizer step::

    average = d * average + (1 - d) * weights,   d = min(D, (1 + t) / (10 + t))

where ``t`` is the number of steps done (the warm-up, TensorFlow's ``num_updates`` form,
lets the first steps' weights count rather than those at initialisation). The copy is
what a run evaluates after each epoch, keeps as its best epoch, saves and judges at the
end; the trained network goes on stepping as before, so the trajectory of training is
the same with or without the average (its noise, not its direction, is averaged out).
Batchnorm's buffers are copied from the trained network; the evaluation phase then
recomputes them from the averaged weights (``engine.refresh_batchnorm_statistics``).

Averaged weights are one of the ablations of Keller Jordan's CIFAR-10 speed runs
(airbench, 2024), and Polyak averaging before that; see BENCHMARKS.md for what it did on
Fashion-MNIST here.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """The averaged copy of ``network`` (same device, dtype and memory layout), which
    follows ``network``'s weights as they are trained in place.

    An update of ``fast``'s 24 weight tensors and 21 batchnorm buffers took 0.5-0.7 ms
    (one thread, a busy 2-core Sapphire Rapids; 1.2-2.4 ms when the tensors were listed
    again at every step), under 0.5% of its training step: so they are listed once, here.
    """

    def __init__(self, network: torch.nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"an average's decay must be in (0, 1), not {decay!r}")
        self.decay = decay
        self.network = copy.deepcopy(network)
        self.network.requires_grad_(False)
        self._averaged = list(self.network.parameters())
        self._trained = [p.detach() for p in network.parameters()]  # views: stepped in place
        self._buffers = list(self.network.buffers())
        self._trained_buffers = list(network.buffers())

    def decay_at(self, steps_done: int) -> float:
        """The weight of the old average after ``steps_done`` (>= 1) steps of training."""
        return min(self.decay, (1 + steps_done) / (10 + steps_done))

    @torch.no_grad()
    def update(self, steps_done: int) -> None:
        """Fold the trained weights in after the ``steps_done``-th optimizer step."""
        torch._foreach_lerp_(self._averaged, self._trained, 1 - self.decay_at(steps_done))
        if self._buffers:
            torch._foreach_copy_(self._buffers, self._trained_buffers)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.network.state_dict()
