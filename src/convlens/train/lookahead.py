"""Lookahead (Zhang, Lucas, Hinton and Ba, 2019): slow weights that the trained ones are
pulled back to every ``k`` steps.

The optimizer steps the network's ("fast") weights as usual; after every ``k``-th step
of the run::

    slow = slow + alpha * (fast - slow),   fast = slow

so each k steps explore ahead and only ``alpha`` of where they went is kept (the
optimizer's own state, Adam's moments, carries on untouched). The slow weights start as
the initial ones. Which steps synchronise depends only on the global step count, so a
resumed run synchronises where an uninterrupted one does; the slow weights themselves
travel in the checkpoint (``slow/*``, :mod:`convlens.train.checkpoint`). Batchnorm's
running statistics are buffers, not weights: they are not pulled back.

Lookahead around the optimizer is one of the ablations of Keller Jordan's CIFAR-10
speed runs (airbench, 2024; k=5 there); see BENCHMARKS.md for what it did on
Fashion-MNIST here.
"""

from __future__ import annotations

import torch


class Lookahead:
    """The slow copy of ``network``'s trained parameters (same device, dtype and layout)
    and the rule that pulls them back to it every ``k`` steps. Made after the network's
    frozen parts are fitted and it is placed on its device, as the optimizer is."""

    def __init__(self, network: torch.nn.Module, k: int, alpha: float) -> None:
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"lookahead's k must be a whole number of steps >= 1, not {k!r}")
        if not 0 < alpha <= 1:
            raise ValueError(f"lookahead's alpha must be in (0, 1], not {alpha!r}")
        self.k = k
        self.alpha = alpha
        # views, stepped in place; frozen ones (a whitening stem's filters) never move
        self._fast = [p.detach() for p in network.parameters() if p.requires_grad]
        self.slow = [p.clone() for p in self._fast]

    @torch.no_grad()
    def update(self, steps_done: int) -> None:
        """After the ``steps_done``-th optimizer step (from 1): every k-th, move the slow
        weights ``alpha`` of the way to the fast ones and restart the fast ones there."""
        if steps_done % self.k:
            return
        torch._foreach_lerp_(self.slow, self._fast, self.alpha)
        torch._foreach_copy_(self._fast, self.slow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The slow weights by index among the trained parameters (in the order of
        ``network.parameters()``)."""
        return {str(i): p for i, p in enumerate(self.slow)}

    @torch.no_grad()
    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the slow weights; the names, shapes and dtypes were checked by the
        caller (the checkpoint), so a mismatch here is a bug, not bad input."""
        for i, p in enumerate(self.slow):
            p.copy_(tensors[str(i)])
