"""Export a trained run for use outside convlens: ONNX, checked against PyTorch.

The exported graph takes float images in 0..1, shaped (N, C, H, W) with N free, and
returns class probabilities (N, K), so any ONNX runtime can classify without convlens.
Needs the optional extra: ``pip install 'convlens[onnx]'``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convlens import fileio
from convlens.errors import ConvlensError
from convlens.models.network import Network
from convlens.runs import Run


@dataclass(frozen=True)
class ExportResult:
    path: Path
    max_abs_difference: float | None  # ONNX Runtime vs PyTorch on random images


class _Probabilities(torch.nn.Module):
    """The network with its softmax applied: what a deployed classifier returns."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images).softmax(dim=-1)


def export_onnx(run: Run, path: str | Path, *, check: bool = True) -> ExportResult:
    """Write ``path`` (ONNX, dynamic batch) and, with ``check``, compare it to PyTorch."""
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise ConvlensError(
            "ONNX export needs the onnx extra; install it with: pip install 'convlens[onnx]'"
        ) from None
    network = run.network().float().eval()
    model = _Probabilities(network)
    c, h, w = run.input_shape
    example = torch.rand(2, c, h, w)
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _quiet():
        program = torch.onnx.export(
            model, (example,), None, dynamo=True, input_names=["images"],
            output_names=["probabilities"], dynamic_shapes={"images": {0: batch}},
            verbose=False,
        )  # fmt: skip
    buffer = io.BytesIO()
    program.save(buffer)
    fileio.write_bytes(path, buffer.getvalue())
    difference = _check(Path(path), model, (c, h, w)) if check else None
    return ExportResult(Path(path), difference)


def _check(path: Path, model: torch.nn.Module, shape: tuple[int, int, int]) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.rand(17, *shape)  # an odd batch: the batch dimension really is dynamic
    got = session.run(None, {"images": images.numpy()})[0]
    with torch.no_grad():
        want = model(images).numpy()
    difference = float(np.abs(got - want).max())
    if difference > 1e-4:
        raise ConvlensError(
            f"{path}: ONNX Runtime differs from PyTorch by {difference:.2e} (> 1e-4); "
            "please report this with the run's spec.json"
        )
    return difference


@contextlib.contextmanager
def _quiet():
    """torch's exporter narrates every stage on stdout and warns about optional packages."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
