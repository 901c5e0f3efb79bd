"""Answers from a network, fast: the one forward pass that predicting and evaluating use.

``logits(network, x)`` and ``probabilities(network, x)`` take float images (N, C, H, W)
in 0..1 and return (N, K) float32. ``convlens predict`` and ``evaluate``, training's
evaluation passes that run in fp32, the look-inside commands' predictions and the web
page all come here (through :meth:`Network.predict_proba`,
:func:`convlens.predict.predict_arrays` and :func:`convlens.train.engine.predict_logits`).

For a :class:`~convlens.models.network.Network` (a module whose class says
``exports_faithfully = True``: its forward has no data-dependent control flow, so an
export reproduces it) in eval mode with fp32 weights on the CPU, one of two engines
answers, each equal to the eager network to 1e-5 (tests/models/test_inference.py, on
every preset, imported Keras models and trained weights):

- **ONNX Runtime**, when the ``onnx`` extra is installed: the network is exported in
  memory (the TorchScript-based exporter, about 0.3-0.7 s for the presets; nothing is
  written to disk) and run by an ``InferenceSession`` with as many threads as torch
  uses now (what :mod:`convlens.train.threads` chose). Its kernels fuse
  conv+bias+ReLU and skip PyTorch's per-layer dispatch: on the lesson's ``cnn``,
  measured side by side (BENCHMARKS.md, "Inference in process"), it is the fastest
  in batches and for one image. Exporting is only worth it for a network asked more
  than once, so the session is built on the second call with the same weights, or the
  first one that brings :data:`EXPORT_AFTER_IMAGES` images.
- else a **channels_last copy** of the network under ``torch.inference_mode``: oneDNN's
  convolutions and pooling are written for NHWC (the NCHW network converts around
  every convolution).

Both are cached per network and keyed by its weights: their storage, version counters
and optimizer steps (``load_state_dict``, ``.to()``, in-place writes and any
``torch.optim`` step change them, and the next call builds again; a write through
``tensor.data`` is not seen: call :func:`forget` after one), and by the thread count.
Anything else (training mode, bf16 weights, a GPU, another kind of module, an export
that fails or disagrees with the eager network on its check) runs the network itself.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

# A first call with at least this many images builds the ONNX Runtime session at once
# (its export costs about what the eager network takes for 1,000 images).
EXPORT_AFTER_IMAGES = 1_000
# The ONNX engine is compared with the eager network on a check batch before it is
# used: it must agree to this, relative to the largest output (or absolutely below 1).
SELF_CHECK_TOLERANCE = 1e-4
_CHECK_BATCH = 3

Forward = Callable[[torch.Tensor], torch.Tensor]  # (N, C, H, W) float -> (N, K)


@dataclass
class _Engine:
    key: tuple  # the weights and threads it was built for
    forward: Forward
    name: str  # "onnxruntime", "channels_last" (for benchmarks and tests)
    calls: int = 0
    onnx_tried: bool = False
    onnx: bytes | None = field(default=None, repr=False)


_CACHE: weakref.WeakKeyDictionary[nn.Module, _Engine] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def logits(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's outputs (N, K), float32, for float images ``x`` (N, C, H, W) in 0..1,
    without autograd, from the fastest engine that answers as the network does."""
    with torch.inference_mode():
        return engine_for(network, x)(x).float()


def probabilities(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, K) for float images ``x`` (N, C, H, W) in 0..1."""
    return logits(network, x).softmax(dim=-1)


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


def engine_for(network: nn.Module, x: torch.Tensor) -> Forward:
    """The forward pass that answers for ``network`` on inputs like ``x`` now."""
    if not getattr(network, "exports_faithfully", False):
        return network  # only networks built from specs are known to export faithfully
    if network.training or x.device.type != "cpu" or x.dtype != torch.float32:
        return network
    weights = _weights_key(network)
    if weights is None:
        return network
    key = (weights, torch.get_num_threads())
    with _LOCK:
        entry = _CACHE.get(network)
        if entry is None or entry.key[0] != weights:
            entry = _Engine(key, _channels_last_copy(network), "channels_last")
            _CACHE[network] = entry
        elif entry.key != key and entry.onnx is not None:  # other threads: a new session
            entry.forward, entry.key = _onnx_session(entry.onnx, key[1]), key
        entry.calls += 1
        if not entry.onnx_tried and (entry.calls > 1 or x.shape[0] >= EXPORT_AFTER_IMAGES):
            entry.onnx_tried = True
            entry.onnx = _export_onnx(network, x)
            if entry.onnx is not None:
                entry.forward, entry.name = _onnx_session(entry.onnx, key[1]), "onnxruntime"
                if not _agrees(network, entry.forward, x):
                    entry.onnx, entry.forward = None, _channels_last_copy(network)
                    entry.name = "channels_last"
        return entry.forward


def _weights_key(network: nn.Module) -> tuple | None:
    """What identifies the weights now: storage, version and optimizer steps of every
    parameter and buffer; None when one is not fp32 on the CPU (the eager path then)."""
    modules = _MODULES.get(network)
    if modules is None:  # a network's layers are fixed by its spec: listed once
        modules = _MODULES[network] = list(network.modules())
    key = []
    for module in modules:  # the dicts themselves: 5x faster than .parameters() here
        for tensors in (module._parameters.values(), module._buffers.values()):
            for tensor in tensors:
                if tensor is None:
                    continue
                if tensor.device.type != "cpu":
                    return None
                if tensor.is_floating_point() and tensor.dtype != torch.float32:
                    return None
                key.append((tensor.data_ptr(), tensor._version, getattr(tensor, _STEPS, 0)))
    return tuple(key)


_MODULES: weakref.WeakKeyDictionary[nn.Module, list[nn.Module]] = weakref.WeakKeyDictionary()


# In-place writes raise a tensor's version counter, but a fused optimizer step (Adam's
# one-kernel update, which convlens trains with) does not: every optimizer step counts
# itself on the parameters it updated instead (a few microseconds a step).
_STEPS = "_convlens_optimizer_steps"


def _count_step(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            setattr(parameter, _STEPS, getattr(parameter, _STEPS, 0) + 1)


register_optimizer_step_post_hook(_count_step)


def _channels_last_copy(network: nn.Module) -> Forward:
    twin = copy.deepcopy(network).to(memory_format=torch.channels_last).eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        return twin(x.contiguous(memory_format=torch.channels_last))

    return forward


def _export_onnx(network: nn.Module, x: torch.Tensor) -> bytes | None:
    """The network as ONNX bytes (dynamic batch), or None without the onnx extra or
    when the exporter refuses it."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    buffer = io.BytesIO()
    try:
        with _quiet(), torch.inference_mode(False), torch.no_grad():
            example = torch.rand(_CHECK_BATCH, *x.shape[1:])
            torch.onnx.export(
                network, (example,), buffer, dynamo=False, input_names=["images"],
                output_names=["logits"], dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}},
            )  # fmt: skip
    except Exception:  # any refusal means: another engine answers
        return None
    return buffer.getvalue()


def _onnx_session(model: bytes, threads: int) -> Forward:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: a spinning thread takes a core that
    # another process (or this one's training) needs, as torch's OpenMP threads did.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def forward(x: torch.Tensor) -> torch.Tensor:
        images = np.ascontiguousarray(x.numpy(), dtype=np.float32)  # NCHW, any layout in
        return torch.from_numpy(session.run(None, {"images": images})[0])

    return forward


def _agrees(network: nn.Module, forward: Forward, x: torch.Tensor) -> bool:
    check = torch.cat([x[:_CHECK_BATCH], torch.rand(_CHECK_BATCH, *x.shape[1:])])
    try:
        expected = network(check)
        difference = (forward(check) - expected).abs().max()
    except Exception:  # an engine that cannot run is not used
        return False
    return bool(difference <= SELF_CHECK_TOLERANCE * max(1.0, float(expected.abs().max())))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's deprecation notes and tracer warnings are not the user's business."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)
