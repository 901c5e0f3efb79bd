"""ONNX Runtime on a network exported in memory: the fast engine of :mod:`.inference`.

:func:`export_onnx` turns a network into ONNX bytes with two outputs, ``logits`` (N, K)
and ``probabilities`` (N, K) (the softmax inside the graph: computing it there costs
nothing measurable, and saves a torch softmax per call: 0.96x the time for one image,
BENCHMARKS.md, "Session 5: one image in 0.15 ms").
:class:`OnnxForward` runs them. A one-image call, the web page's and a notebook's
usual question, goes through :class:`_OneImage`: input and outputs bound once to
preallocated arrays (ONNX Runtime's IOBinding), so a call copies 784 floats in and 10
out instead of building the feed and the result lists again (0.97-1.00x the time of
``session.run`` on the same session: no loss, and a uint8 image can be scaled straight
into the bound input).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from convlens.idle_cores import IdleCores
from convlens.models.inputs import LEVELS

INPUT, LOGITS, PROBABILITIES = "images", "logits", "probabilities"
_WRAPPED = "network."  # the exported graph's prefix of the network's tensor names
_EXAMPLE_BATCH = 3


@functools.cache
def onnx_installed() -> bool:
    """Whether the onnx extra (onnx and onnxruntime) is there to import, without importing
    it (a quarter of a second and more: the export pays that when it first runs)."""
    try:
        return all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime"))
    except (ImportError, ValueError):  # a module set to None in sys.modules, a broken one
        return False


#: What the first export imports (0.25 s with the files in the page cache, seconds from a
#: cold disk), for a caller to import ahead (:class:`convlens.background_import.BackgroundImport`).
EXPORTER_MODULES = ("onnx", "onnxruntime", "torch.onnx")


def exporter_modules() -> tuple[str, ...]:
    """:data:`EXPORTER_MODULES` where the onnx extra is installed, else none."""
    return EXPORTER_MODULES if onnx_installed() else ()


def export_onnx(network: nn.Module, input_shape: tuple[int, ...]) -> bytes | None:
    """``network`` as ONNX bytes (dynamic batch, outputs logits and probabilities), or
    None without the onnx extra or when the exporter refuses it.

    The TorchScript-based exporter (``dynamo=False``): 0.3-0.7 s for the presets, where
    the dynamo exporter took 5.8 s.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    buffer = io.BytesIO()
    try:
        with _quiet(), torch.inference_mode(False), torch.no_grad():
            example = torch.rand(_EXAMPLE_BATCH, *input_shape)
            torch.onnx.export(
                _WithProbabilities(network).eval(), (example,), buffer, dynamo=False,
                input_names=[INPUT], output_names=[LOGITS, PROBABILITIES],
                dynamic_axes={INPUT: {0: "n"}, LOGITS: {0: "n"}, PROBABILITIES: {0: "n"}},
            )  # fmt: skip
    except Exception:  # any refusal means: another engine answers
        return None
    return buffer.getvalue()


def with_weights(model: bytes, network: nn.Module) -> bytes | None:
    """:func:`export_onnx`'s ``model`` of ``network`` with the network's weights as they
    are now, or None (export again) when the graph's initializers are not the network's
    floating-point tensors, each by name and shape: the exporter folds a batchnorm into
    the convolution before it, under new names.

    After a training epoch the graph is the same, only the weights moved: swapping them
    in takes about 2-15 ms for the lesson's cnn where exporting it again took 80-300 ms
    (busy machine, one and two threads).
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    state = network.state_dict()
    # The exporter stores tensors of equal values once (two zero biases at
    # initialisation) and names the others with an Identity node: each gets its own.
    stored = {initializer.name: initializer for initializer in graph.initializer}
    for node in list(graph.node):
        if node.op_type == "Identity" and node.input[0] in stored:
            twin = onnx.TensorProto()
            twin.CopyFrom(stored[node.input[0]])
            twin.name = node.output[0]
            graph.initializer.append(twin)
            graph.node.remove(node)
    names = {initializer.name.removeprefix(_WRAPPED) for initializer in graph.initializer}
    if any(v.is_floating_point() and k not in names for k, v in state.items()):
        return None  # a tensor folded into another (batchnorm into its convolution)
    for initializer in graph.initializer:
        tensor = state.get(initializer.name.removeprefix(_WRAPPED))
        if (
            tensor is None
            or not tensor.is_floating_point()
            or tuple(tensor.shape) != tuple(initializer.dims)
            or initializer.data_type != onnx.TensorProto.FLOAT
        ):
            return None
        array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
        initializer.CopyFrom(numpy_helper.from_array(array, initializer.name))
    return proto.SerializeToString()


class OnnxForward:
    """An ONNX Runtime session on :func:`export_onnx`'s bytes, with ``threads`` threads,
    and one-image sessions on one or two threads, whichever the idle cores allow now.

    ``forward(x)`` -> logits, ``forward.probabilities(x)`` -> probabilities: float
    images (N, C, H, W) in, (N, K) float32 tensors out (their own memory).

    One image (10 MFLOP for the lesson's cnn) runs on two threads while another core is
    idle and on one while other processes keep it busy (:data:`ONE_IMAGE_MOST_THREADS`,
    never more than ``threads``): quiet, two threads answer in 0.86x the time of one;
    with a neighbour on the other core, the second thread waits for it at every layer
    (0.79-0.87x the time of two threads for one, and 0.07-0.73x at the 95th percentile:
    BENCHMARKS.md, "Session 5: one image in 0.15 ms" and "Session 6: one image on the
    idle cores"; spinning pool threads stay off: 0.85-0.89x a call, but a spinning
    neighbour kept 0.34 of its progress against 0.46). The idle cores are
    :class:`~convlens.idle_cores.IdleCores`' cached reading of the machine's counters:
    the CPU time other processes used lately and the threads waiting for a core now
    (this process's too, such as the web page's training threads). The session
    of a count is built at the first call that wants it (25-30 ms and a copy of the
    weights, about 1 MB for cnn); the count that equals ``threads`` is the batch session
    itself.
    """

    def __init__(self, model: bytes, threads: int) -> None:
        self.session = _session(model, threads)
        self.threads = threads
        self._model = model
        self._one: dict[int, _OneImage] = {}  # built at the first one-image call:
        self._building = threading.Lock()  # training's evaluation passes never ask one
        self._most = min(ONE_IMAGE_MOST_THREADS, threads)
        self.idle = IdleCores(threads) if self._most > 1 else None

    def one_image_threads(self) -> int:
        """The threads one image runs on now: as many as the idle cores, at most
        :data:`ONE_IMAGE_MOST_THREADS` and ``threads`` (about 1 us: a cached reading)."""
        if self.idle is None:
            return 1
        idle = self.idle.count()
        return idle if idle < self._most else self._most

    def one_image(self, threads: int | None = None) -> _OneImage:
        """The one-image session for ``threads`` (default: :meth:`one_image_threads`)
        with its bound buffers, built on first use."""
        threads = threads or self.one_image_threads()
        one = self._one.get(threads)
        if one is None:
            with self._building:
                one = self._one.get(threads)
                if one is None:
                    _, *image_shape = self.session.get_inputs()[0].shape  # ("n", C, H, W)
                    classes = int(self.session.get_outputs()[0].shape[-1])
                    alone = self.session
                    if threads != self.threads:
                        alone = _session(self._model, threads)
                    one = self._one[threads] = _OneImage(alone, tuple(image_shape), classes)
        return one

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(x, 0))

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(x, 1))

    def pixel_probabilities(self, pixels: np.ndarray) -> np.ndarray | None:
        """Probabilities (1, K) for one uint8 image (1, C, H, W), scaled by 1/255 into the
        bound input; None for any other array (or while another thread runs one)."""
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8:
            return None
        return self.one_image().run(pixels, 1)

    def _run(self, x: torch.Tensor, output: int) -> np.ndarray:
        x = x.detach() if x.requires_grad else x
        if x.shape[0] == 1:
            answer = self.one_image().run(x, output)
            if answer is not None:
                return answer
        images = np.ascontiguousarray(x.numpy(), dtype=np.float32)  # NCHW, any layout in
        return self.session.run(None, {INPUT: images})[output]


ONE_IMAGE_MOST_THREADS = 2  # one image runs on 1 or 2 threads (more only adds wake-ups)


def _session(model: bytes, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: a spinning thread takes a core that
    # another process (or this one's training) needs, as torch's OpenMP threads did.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class _OneImage:
    """One image through the session with its input and outputs bound to arrays made
    once. One caller at a time (a second thread meanwhile takes ``session.run``)."""

    def __init__(self, session: Any, input_shape: tuple[int, ...], classes: int) -> None:
        self.session = session
        self.images = np.zeros((1, *input_shape), np.float32)
        self.shape = torch.Size(self.images.shape)
        self._images = torch.from_numpy(self.images)  # the same memory, to copy into
        self.outputs = (np.zeros((1, classes), np.float32), np.zeros((1, classes), np.float32))
        self.binding = session.io_binding()
        self.binding.bind_input(
            INPUT, "cpu", 0, np.float32, list(self.images.shape), self.images.ctypes.data
        )
        for name, array in zip((LOGITS, PROBABILITIES), self.outputs, strict=True):
            shape = list(array.shape)
            self.binding.bind_output(name, "cpu", 0, np.float32, shape, array.ctypes.data)
        self.lock = threading.Lock()

    def run(self, x: torch.Tensor | np.ndarray, output: int) -> np.ndarray | None:
        """(1, K) float32 of its own for ``x`` (1, C, H, W): float images in 0..1, or
        uint8 pixels (an array, scaled as :func:`~convlens.models.inputs.to_float_images`
        does); None for another shape or while another thread runs one."""
        if x.shape != self.shape or not self.lock.acquire(blocking=False):
            return None
        try:
            if isinstance(x, np.ndarray):
                np.divide(x, LEVELS, out=self.images)
            else:
                self._images.copy_(x)  # any layout (a torch copy: 2 us less than NumPy's)
            self.session.run_with_iobinding(self.binding)
            return self.outputs[output].copy()
        finally:
            self.lock.release()


class _WithProbabilities(nn.Module):
    """The network and its softmax, both outputs of one graph. Made in eval mode: the
    exporter puts a module in training mode back into it afterwards, and with it every
    submodule, the network's own batchnorm and dropout included."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.network(images)
        return logits, logits.softmax(dim=-1)


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
