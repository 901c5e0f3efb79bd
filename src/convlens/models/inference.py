"""Answers from a network, fast: the one forward pass that predicting and evaluating use.

``logits(network, x)`` and ``probabilities(network, x)`` take float images (N, C, H, W)
in 0..1 and return (N, K) float32. ``convlens predict`` and ``evaluate``, training's
evaluation passes that run in fp32, the look-inside commands' predictions and the web
page all come here (through :meth:`Network.predict_proba`,
:func:`convlens.predict.predict_arrays` and :func:`convlens.train.engine.predict_view_logits`).

For a :class:`~convlens.models.network.Network` (a module whose class says
``exports_faithfully = True``: its forward has no data-dependent control flow, so an
export reproduces it) in eval mode with fp32 weights on the CPU, one of two engines
answers, each equal to the eager network to 1e-5 (tests/models/test_inference.py, on
every preset, imported Keras models and trained weights):

- **ONNX Runtime**, when the ``onnx`` extra is installed: the network is exported in
  memory (the TorchScript-based exporter, about 0.3-0.7 s for the presets; nothing is
  written to disk) and run by an ``InferenceSession`` with as many threads as torch
  uses now (what :mod:`convlens.train.threads` chose), one image on one or two
  threads as the idle cores allow at that moment (:mod:`convlens.models.onnx_runtime`
  says why). Its kernels fuse
  conv+bias+ReLU and skip PyTorch's per-layer dispatch: on the lesson's ``cnn``,
  measured side by side (BENCHMARKS.md, "Inference in process"), it is the fastest
  in batches and for one image. Exporting is only worth it for a network asked more
  than once, so the session is built on the second call with the same weights, or the
  first one that brings :data:`EXPORT_AFTER_IMAGES` images.
- else a **channels_last copy** of the network under ``torch.inference_mode``: oneDNN's
  convolutions and pooling are written for NHWC (the NCHW network converts around
  every convolution).

When the weights change (a training epoch), the graph exported for the old ones is
reused with the new weights swapped in (:func:`~convlens.models.onnx_runtime.with_weights`:
milliseconds, where an export takes 0.1-0.3 s), unless the export folded some of them
(batchnorm into a convolution): then it is exported again.

Both are cached per network with a :class:`~convlens.models.weight_watch.WeightWatch`
of its weights (version counters, storage addresses, registrations; any
``torch.optim`` step, ``load_state_dict``, ``.to()`` and in-place writes are seen, and
the next call builds again; a write through ``tensor.data`` is not seen: call
:func:`forget` after one), and the thread count. A call that finds its engine ready
checks only that (about 3 us) before ONNX Runtime runs: no lock, no inference mode, no
softmax in torch (BENCHMARKS.md, "Session 5: one image in 0.15 ms").
Anything else (training mode, bf16 weights, a GPU, another kind of module, an export
that fails or disagrees with the eager network on its check) runs the network itself.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from convlens.models.inputs import to_float_images
from convlens.models.onnx_runtime import OnnxForward, export_onnx, onnx_installed, with_weights
from convlens.models.weight_watch import WeightWatch

# A first call with at least this many images builds the ONNX Runtime session at once
# (its export costs about what the eager network takes for 1,000 images).
EXPORT_AFTER_IMAGES = 1_000
# The ONNX engine is compared with the eager network on a check batch before it is
# used: it must agree to this, relative to the largest output (or absolutely below 1).
SELF_CHECK_TOLERANCE = 1e-4
_CHECK_BATCH = 3
# Numbers an image times images a batch (512 28x28 greyscale images) for a pass over many
# images through ONNX Runtime on two threads or more: there a 10,000-image pass took
# 0.69-0.85x as long at 512 as at 128 (cnn, quick, fast; a network's first pass, which
# builds the engine, 0.71-0.94x; Zen 1), on one thread 1.00-1.06x. The channels_last
# copy keeps the caller's batch: 0.75-0.91x at 256-512 on two threads but 1.22-1.36x
# on one for cnn (BENCHMARKS.md, "Session 13: evaluation batches").
ONNX_PASS_VALUES = 512 * 28 * 28

Forward = Callable[[torch.Tensor], torch.Tensor]  # (N, C, H, W) float -> (N, K)


@dataclass
class _Engine:
    watch: WeightWatch  # the weights it was built for
    threads: int
    forward: Forward
    name: str  # "onnxruntime", "channels_last" (for benchmarks and tests)
    calls: int = 0
    onnx_tried: bool = False
    onnx: bytes | None = field(default=None, repr=False)

    def ready(self, x: torch.Tensor) -> bool:
        """It answers for ``x`` now: an fp32 CPU input, and :meth:`built_for_now`."""
        return x.is_cpu and x.dtype == torch.float32 and self.built_for_now()

    def built_for_now(self) -> bool:
        """A built ONNX session (or one that will not be built) for the network's
        weights and mode as they are now, and for torch's thread count."""
        return (
            self.onnx_tried
            and self.threads == torch.get_num_threads()
            and self.watch.unchanged()
            and self.watch.in_eval_mode()
        )

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.forward, OnnxForward):
            return self.forward.probabilities(x)  # the graph's own softmax
        with torch.inference_mode():
            return self.forward(x).softmax(dim=-1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.forward, OnnxForward):
            return self.forward(x)  # no autograd to switch off around ONNX Runtime
        with torch.inference_mode():
            return self.forward(x)


_CACHE: weakref.WeakKeyDictionary[nn.Module, _Engine] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def logits(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's outputs (N, K), float32, for float images ``x`` (N, C, H, W) in 0..1,
    without autograd, from the fastest engine that answers as the network does."""
    engine = _engine(network, x)
    if engine is not None:
        return engine.logits(x)
    with torch.inference_mode():
        return network(x).float()


def probabilities(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, K) for float images ``x`` (N, C, H, W) in 0..1."""
    engine = _engine(network, x)
    if engine is not None:
        return engine.probabilities(x)
    with torch.inference_mode():
        return network(x).float().softmax(dim=-1)


def pixel_probabilities(network: nn.Module, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities (N, K) float32 for uint8 ``pixels`` (N, C, H, W): what
    ``probabilities(network, to_float_images(pixels)).numpy()`` returns.

    One image goes straight into the ONNX engine's bound input, scaled there: no float
    tensor of it, no copy of that into the input, no tensor of the answer.
    ``look()`` and ``predict_arrays`` ask here.
    """
    answer = ready_pixel_probabilities(network, pixels)
    if answer is not None:
        return answer
    return probabilities(network, to_float_images(pixels)).numpy()


def ready_pixel_probabilities(network: nn.Module, pixels: np.ndarray) -> np.ndarray | None:
    """:func:`pixel_probabilities` for one uint8 image (1, C, H, W) when the network's
    ONNX engine is built for its weights and mode as they are now (one check, about
    2 us), else None: the caller prepares the network and asks again. A network in
    training mode is never answered here (its engine is not built for that mode)."""
    entry = _CACHE.get(network)
    if entry is not None and isinstance(entry.forward, OnnxForward) and entry.built_for_now():
        return entry.forward.pixel_probabilities(pixels)
    return None


def pass_batch(network: nn.Module, image_shape: tuple[int, ...], batch: int) -> int:
    """Images a call for a pass over many fp32 images of ``image_shape`` (C, H, W): where
    ONNX Runtime will answer for ``network`` (the onnx extra installed, a network that
    exports faithfully) on two threads or more, as many as :data:`ONNX_PASS_VALUES`
    holds, never fewer than ``batch``; else ``batch``. It depends on nothing that changes
    during a pass (the thread count moves between training steps only), so a progress
    bar's count of batches made from it holds for the pass."""
    if not (getattr(network, "exports_faithfully", False) and onnx_installed()):
        return batch
    if torch.get_num_threads() < 2:
        return batch
    values = max(1, int(np.prod(image_shape)))
    return max(batch, ONNX_PASS_VALUES // values)


def engine_name(network: nn.Module) -> str:
    """Which engine answered this network's last call: "onnxruntime", "channels_last"
    or "eager" (the network itself)."""
    entry = _CACHE.get(network)
    return entry.name if entry is not None else "eager"


def forget(network: nn.Module) -> None:
    """Drop the engine built for ``network`` (after changing its weights behind torch's
    back, e.g. through ``parameter.data``)."""
    with _LOCK:
        _CACHE.pop(network, None)


def on_cpu_in_eval(network: nn.Module, *, fp32: bool = False) -> nn.Module:
    """``network.to("cpu").eval()`` (and ``.float()`` with ``fp32``), as predicting
    wants it, skipped when its engine is ready for it as it is: each of those walks
    every module (about 0.1-0.3 ms for the lesson's cnn, more than answering one image).
    """
    entry = _CACHE.get(network)
    if entry is not None and entry.watch.unchanged() and entry.watch.in_eval_mode():
        return network  # fp32 on the CPU (what the engine was built from), in eval mode
    network = network.to("cpu")
    return (network.float() if fp32 else network).eval()


def engine_for(network: nn.Module, x: torch.Tensor) -> Forward:
    """The forward pass that answers for ``network`` on inputs like ``x`` now."""
    engine = _engine(network, x)
    return network if engine is None else engine.forward


def _engine(network: nn.Module, x: torch.Tensor) -> _Engine | None:
    """The engine that answers for ``network`` on ``x``, or None: the network itself."""
    entry = _CACHE.get(network)
    if entry is not None and entry.ready(x):
        return entry  # the usual call: a few microseconds of checks
    if not getattr(network, "exports_faithfully", False):
        return None  # only networks built from specs are known to export faithfully
    if network.training or not x.is_cpu or x.dtype != torch.float32:
        return None
    watch = WeightWatch(network)
    if not watch.usable or not watch.in_eval_mode():
        return None
    threads = torch.get_num_threads()
    with _LOCK:
        entry = _CACHE.get(network)
        if entry is None or not entry.watch.unchanged():
            entry = _reweighted(network, entry, watch, threads, x) or _Engine(
                watch, threads, _channels_last_copy(network), "channels_last"
            )
            _CACHE[network] = entry
        elif entry.threads != threads and entry.onnx is not None:  # a new session
            entry.forward = _onnx_session(entry.onnx, threads)
        entry.threads = threads
        entry.calls += 1
        if not entry.onnx_tried and (entry.calls > 1 or x.shape[0] >= EXPORT_AFTER_IMAGES):
            entry.onnx_tried = True
            entry.onnx = _export_onnx(network, x)
            if entry.onnx is not None:
                entry.forward, entry.name = _onnx_session(entry.onnx, threads), "onnxruntime"
                if not _agrees(network, entry.forward, x):
                    entry.onnx, entry.forward = None, _channels_last_copy(network)
                    entry.name = "channels_last"
            entry.watch = WeightWatch(network)  # the export registered a wrapper module
        return entry


def _reweighted(
    network: nn.Module, old: _Engine | None, watch: WeightWatch, threads: int, x: torch.Tensor
) -> _Engine | None:
    """An ONNX engine for the network's new weights from the graph exported for its old
    ones (after an epoch's steps: the same graph, other weights), or None. Checked
    against the eager network like a fresh export."""
    if old is None or old.onnx is None:
        return None
    model = with_weights(old.onnx, network)
    if model is None:
        return None
    forward = _onnx_session(model, threads)
    if not _agrees(network, forward, x):
        return None
    return _Engine(watch, threads, forward, "onnxruntime", onnx_tried=True, onnx=model)


def _channels_last_copy(network: nn.Module) -> Forward:
    twin = copy.deepcopy(network).to(memory_format=torch.channels_last).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return twin(x.contiguous(memory_format=torch.channels_last))

    return forward


def _export_onnx(network: nn.Module, x: torch.Tensor) -> bytes | None:
    return export_onnx(network, tuple(x.shape[1:]))


def _onnx_session(model: bytes, threads: int) -> OnnxForward:
    return OnnxForward(model, threads)


def _agrees(network: nn.Module, forward: Forward, x: torch.Tensor) -> bool:
    """The engine's logits and probabilities match the eager network's on a check
    batch (the first images of ``x`` and random ones). The one-image session, built
    later from the same bytes, is not run here (tests hold it to 1e-5 on every preset)."""
    check = torch.cat([x[:_CHECK_BATCH], torch.rand(_CHECK_BATCH, *x.shape[1:])])
    try:
        with torch.inference_mode():
            expected = network(check)
        got = [forward(check)]
        if isinstance(forward, OnnxForward):
            got.append(forward.probabilities(check))
        wanted = [expected, expected.softmax(-1)]
        difference = max(float((a - b).abs().max()) for a, b in zip(got, wanted, strict=False))
    except Exception:  # an engine that cannot run is not used
        return False
    return difference <= SELF_CHECK_TOLERANCE * max(1.0, float(expected.abs().max()))
