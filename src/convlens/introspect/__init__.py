"""Looking inside a trained network: feature maps, learned filters, saliency.

Everything reads from :meth:`convlens.models.network.Network.trace`, the one path into
a network, and returns NumPy arrays; figures live in :mod:`convlens.plots`.
"""

from convlens.introspect.arithmetic import ChannelSum, UnitArithmetic, explain_unit
from convlens.introspect.features import (
    Journey,
    Look,
    feature_maps,
    image_layer_names,
    journey,
    journey_layer_names,
    look,
)
from convlens.introspect.learned_filters import learned_filters
from convlens.introspect.saliency import (
    Explanation,
    cam_layer_name,
    explain,
    grad_cam,
    input_gradients,
)
from convlens.introspect.selection import (
    LESSON_INDICES,
    parse_indices,
    pick_images,
    resolve_class,
)

__all__ = [
    "LESSON_INDICES",
    "ChannelSum",
    "Explanation",
    "Journey",
    "Look",
    "UnitArithmetic",
    "cam_layer_name",
    "explain",
    "explain_unit",
    "feature_maps",
    "grad_cam",
    "image_layer_names",
    "input_gradients",
    "journey",
    "journey_layer_names",
    "learned_filters",
    "look",
    "parse_indices",
    "pick_images",
    "resolve_class",
]
