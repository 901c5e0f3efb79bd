"""Live, silent and dead filters: which feature maps carry anything at all.

After a relu, a filter whose weighted sum is negative everywhere outputs a map of zeros.
On one image that is *silent* (nothing it looks for is there); on every one of a few
hundred test images it is *dead*: the filter never fires and passes nothing on, which is
common in a trained ``cnn`` (filter 1 of conv2d_1 is dead in a typical run). Figures mark
both, so an all-black panel is not read as a dark feature, and the journey's default
filter is one that is live.

A map counts as silent when it holds one value everywhere (all 0 after a relu; for a
layer without relu, a constant), so the test needs no knowledge of the activation. A
1x1 map (``maxpool(3)`` of a 3x3 map) always holds one value, so it counts as silent only
when that value is 0: what a relu before it leaves when nothing fired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from convlens.introspect.features import Journey, feature_maps
from convlens.models.network import Network

__all__ = [
    "LESSON_FILTER",
    "REFERENCE_IMAGES",
    "FilterChoice",
    "choose_filter",
    "dead_filters",
    "mark_dead",
    "silent_maps",
]

LESSON_FILTER = 1  # the lesson follows filter 1
REFERENCE_IMAGES = 256  # test images a filter must stay silent on to be called dead


def silent_maps(maps: np.ndarray) -> np.ndarray:
    """(N, C, H, W) maps -> (N, C) bool: True where image n's map of filter c is one
    value everywhere (all 0 after a relu); a 1x1 map where its one value is 0."""
    flat = maps.reshape(*maps.shape[:2], -1)  # (N, C, H*W)
    if flat.shape[2] == 1:  # one cell is always "one value": only 0 says nothing fired
        return flat[:, :, 0] == 0
    return flat.max(axis=2) <= flat.min(axis=2)


def dead_filters(
    network: Network, images: np.ndarray, layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """{layer: (C,) bool}: filters silent on every one of ``images`` (N, C, H, W) uint8.

    Pass a few hundred test images (:data:`REFERENCE_IMAGES`): a filter that fires on
    none of them is dead for practical purposes.
    """
    maps = feature_maps(network, images, layers)
    return {name: silent_maps(m).all(axis=0) for name, m in maps.items()}


@dataclass(frozen=True)
class FilterChoice:
    """The filter the journey follows, and why, in a sentence for people."""

    index: int
    reason: str


def choose_filter(
    network: Network, images: np.ndarray, layers: Sequence[str], preferred: int = LESSON_FILTER
) -> FilterChoice:
    """The lesson's filter 1 when its map is live (not silent) in every layer for every
    image, else the lowest filter index that is, else the one with the most live panels.

    ``images`` (N, C, H, W) uint8 are the journey's rows; ``layers`` its columns.
    """
    maps = feature_maps(network, images, layers)
    count = min(m.shape[1] for m in maps.values())
    live = np.stack([~silent_maps(m[:, :count]) for m in maps.values()])  # (L, N, count)
    everywhere = live.all(axis=(0, 1))  # (count,)
    panels = live.shape[0] * live.shape[1]
    if preferred < count and everywhere[preferred]:
        return FilterChoice(
            preferred, f"filter {preferred}, the lesson's, is live in every layer on these images"
        )
    why_not = ""
    if preferred < count:
        silent = panels - int(live[:, :, preferred].sum())
        why_not = f"the lesson's filter {preferred} is silent in {silent} of {panels} panels; "
    if everywhere.any():
        index = int(np.flatnonzero(everywhere)[0])
        return FilterChoice(
            index, f"{why_not}filter {index} is the first live in every layer on these images"
        )
    index = int(live.sum(axis=(0, 1)).argmax())
    lit = int(live[:, :, index].sum())
    return FilterChoice(
        index, f"{why_not}no filter is live everywhere; filter {index} is in {lit} of {panels}"
    )


def mark_dead(journey: Journey, network: Network, reference: np.ndarray) -> Journey:
    """``journey`` with ``dead`` set: the layers where its filter is silent on every one
    of the ``reference`` test images (N, C, H, W) uint8."""
    dead = dead_filters(network, reference, journey.layers)
    k = journey.filter_index
    return replace(
        journey,
        dead=tuple(name for name in journey.layers if dead[name][k]),
        reference_count=len(reference),
    )


def follow_filter(
    network: Network,
    images: np.ndarray,
    filter_index: int | None = None,
    layers: Sequence[str] | None = None,
    class_names: Sequence[str] = (),
    reference: np.ndarray | None = None,
) -> Journey:
    """The journey of one filter, as ``convlens journey`` and ``convlens.journey`` draw it.

    ``filter_index`` None follows :func:`choose_filter`'s live filter (its reason kept
    in ``Journey.reason``); with ``reference`` test images (N, C, H, W) uint8 the layers
    where the filter is dead are marked (``Journey.dead``).
    """
    from convlens.introspect.features import journey, journey_layer_names

    reason = ""
    if filter_index is None:
        names = journey_layer_names(network) if layers is None else list(layers)
        choice = choose_filter(network, images, names) if names else None
        filter_index, reason = (choice.index, choice.reason) if choice else (LESSON_FILTER, "")
    result = replace(journey(network, images, filter_index, layers, class_names), reason=reason)
    return mark_dead(result, network, reference) if reference is not None else result
