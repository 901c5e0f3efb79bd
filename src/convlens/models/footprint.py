"""Will a model fit? Its parameters and activation memory, worked out from the spec alone.

Everything that builds or trains a network asks :func:`check_memory` first (``Network``
itself before it allocates a weight, training before it makes a run folder, the sweep
before it plans its trials, the web page before it accepts a training, the model
importers), so a spec whose weights cannot exist (``dense(1000000000000)``, padding
10**6, a 10**5-pixel input) is one line, in microseconds, instead of minutes in torch's
allocator or the kernel's OOM killer.

The figures are estimates in bytes of float32 (what convlens builds and trains in):

* build: the weights (4 bytes a parameter);
* train at batch B: weights, gradients, two Adam moments and the best-epoch and
  checkpoint copies (6 x 4 bytes a parameter), plus what a forward pass keeps for the
  backward pass and the gradients of those (2 x 4 bytes x B x the stored values per
  image, see :meth:`LayerSpec.stored_values`).

Two limits, each one line when crossed: :data:`MAX_PARAMETERS` (documented, the same on
every machine) and the memory this process can still get (:func:`available_memory`:
``MemAvailable``, a cgroup's headroom, ``RLIMIT_AS``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convlens.errors import SpecError
from convlens.models.layers import Shape
from convlens.models.spec import ModelSpec

#: The largest model convlens builds: 10**9 parameters (4 GB of float32 weights; the
#: lesson's CNN has 243,786). Above it a spec is refused whatever the machine.
MAX_PARAMETERS = 1_000_000_000

#: Bytes a parameter costs while training: weight, gradient, two Adam moments, and the
#: best-epoch and checkpoint copies.
TRAIN_BYTES_PER_PARAMETER = 6 * 4

_FLOAT = 4  # bytes

try:
    import resource
except ImportError:  # not on Windows: no RLIMIT_AS there
    resource = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Footprint:
    """What a spec costs on an input shape, before anything is built.

    It keeps the shapes it was worked out from, so whoever has one (a sweep trial, from
    planning to training) hands it on instead of walking the layers again: ``Network``
    and :func:`check_memory` take it as ``footprint=`` / ``found=``.
    """

    model: str
    input_shape: Shape  # (C, H, W)
    parameters: int  # as Keras counts them (batchnorm statistics included)
    outputs_per_image: int  # values of every layer's output for one image
    stored_per_image: int  # values a training forward pass keeps for backward, per image
    shapes: tuple[Shape, ...] = ()  # every layer's output shape, in order
    flops: int = 0  # of a forward pass, per image (the summary's MFLOPs x 1e6)
    spec: ModelSpec | None = field(default=None, repr=False)  # the spec it describes

    def describes(self, spec: ModelSpec, input_shape: Shape) -> bool:
        """Whether this is the footprint of ``spec`` on ``input_shape`` (C, H, W)."""
        return self.spec == spec and tuple(self.input_shape) == tuple(input_shape)

    def build_bytes(self) -> int:
        return _FLOAT * self.parameters

    def predict_bytes(self, batch_size: int = 1) -> int:
        """Weights plus every layer's output (``trace`` keeps them all)."""
        return _FLOAT * (self.parameters + batch_size * self.outputs_per_image)

    def train_bytes(self, batch_size: int) -> int:
        return (
            TRAIN_BYTES_PER_PARAMETER * self.parameters
            + 2 * _FLOAT * batch_size * self.stored_per_image
        )


def footprint(
    spec: ModelSpec, input_shape: Shape, shapes: Sequence[Shape] | None = None
) -> Footprint:
    """Parameters, FLOPs and activation sizes of ``spec`` on ``input_shape`` (C, H, W).

    Pure integer arithmetic on the layers' shapes; a shape a layer cannot take is the
    usual one-line :class:`SpecError` from :meth:`ModelSpec.shapes`. ``shapes``: the
    layers' output shapes when the caller has them already (``ModelSpec.check_fits``).
    """
    shape = tuple(input_shape)
    outs = list(spec.shapes(shape) if shapes is None else shapes)
    parameters = outputs = stored = flops = 0
    for layer, out in zip(spec.layers, outs, strict=True):
        parameters += layer.params(shape)
        outputs += math.prod(out)
        stored += layer.stored_values(shape)
        flops += layer.flops(shape)
        shape = out
    return Footprint(
        spec.name, tuple(input_shape), parameters, outputs, stored, tuple(outs), flops, spec
    )


def check_memory(
    spec: ModelSpec,
    input_shape: Shape,
    *,
    batch_size: int | None = None,
    available: int | None = None,
    found: Footprint | None = None,
) -> Footprint:
    """Refuse, in one line, a spec that cannot be built (``batch_size=None``) or trained
    at ``batch_size`` here; else its :class:`Footprint`.

    ``available`` is the free memory in bytes (default: :func:`available_memory`; where
    it cannot be known only :data:`MAX_PARAMETERS` is checked). ``found``: the spec's
    footprint on ``input_shape`` when the caller has it already (nothing is recomputed).
    """
    if found is None or not found.describes(spec, input_shape):
        found = footprint(spec, input_shape)
    fix = "use fewer filters or units, more pooling, or a smaller input"
    if found.parameters > MAX_PARAMETERS:
        raise SpecError(
            f"model '{spec.name}' has {found.parameters:,} parameters, over convlens' limit "
            f"of {MAX_PARAMETERS:,} ({_size(found.build_bytes())} of weights); {fix}"
        )
    if batch_size is None:
        need, what = found.build_bytes(), "to build"
    else:
        need, what = found.train_bytes(batch_size), f"to train at batch {batch_size}"
        fix += " or batch"
    free = available_memory() if available is None else available
    if free is not None and need > free:
        raise SpecError(
            f"model '{spec.name}' needs about {_size(need)} {what} ({found.parameters:,} "
            f"parameters, {found.stored_per_image:,} values kept per image) but about "
            f"{_size(max(free, 0))} of memory is free; {fix}"
        )
    return found


def available_memory() -> int | None:
    """Bytes this process can still allocate, if known: ``MemAvailable`` from
    /proc/meminfo, lowered to a cgroup's headroom and to what ``RLIMIT_AS`` leaves."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            headroom = int(limit) - used
            free = headroom if free is None else min(free, headroom)
    except (OSError, ValueError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0] if resource else -1
    if resource and soft != resource.RLIM_INFINITY:
        try:  # address space in use: the first field of statm, in pages
            pages = int(Path("/proc/self/statm").read_text().split()[0])
            headroom = soft - pages * os.sysconf("SC_PAGE_SIZE")
            free = headroom if free is None else min(free, headroom)
        except (OSError, ValueError, IndexError):
            pass
    return free


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"
