"""A network's weights in safetensors (``model.safetensors``): no pickle, so loading a
file runs no code. The spec travels in the metadata, so a weights file says what it fits.

Training checkpoints (:mod:`convlens.train.checkpoint`) use the same reading and
fitting rules; they live here, below the run folder, so loading a run needs no training
code.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from convlens import fileio
from convlens.errors import ConvlensError, RunError, shorten


def save_weights(network: torch.nn.Module, path: str | Path, spec: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    metadata = {"format": "convlens-weights-1"}
    if spec is not None:
        metadata["spec"] = json.dumps(spec)
    fileio.write_bytes(path, save_bytes(tensors, metadata=metadata))


#: Safetensors headers (the JSON index before the tensors) larger than this are refused.
MAX_HEADER_BYTES = 16 * 2**20

DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_ITEM_BYTES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}

#: name -> (dtype, shape) that a file must hold; ``None`` for a name that may be absent.
Expected = dict[str, tuple[str, tuple[int, ...]]]


@dataclass(frozen=True)
class Header:
    """A safetensors file's index: each tensor's dtype and shape, and the metadata."""

    tensors: dict[str, tuple[str, tuple[int, ...]]]
    metadata: dict[str, str]
    size: int  # bytes the whole file must have


def read_header(path: str | Path) -> Header:
    """Only the index of a safetensors file (8-byte length, then JSON), checked for sense:
    known dtypes, whole shapes, data offsets that tile the rest of the file exactly."""
    path = Path(path)
    damaged = f"{path} is not a readable safetensors file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except OSError as err:
        raise RunError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RunError(f"{damaged} (it is not a regular file); it is damaged")
        prefix = os.read(fd, 8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 2 <= length <= min(MAX_HEADER_BYTES, info.st_size - 8):
            raise RunError(f"{damaged} (header length {length}); it is damaged")
        raw = b""
        while len(raw) < length:
            piece = os.read(fd, length - len(raw))
            if not piece:
                break
            raw += piece
    except OSError as err:
        raise RunError(f"cannot read {path}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    try:
        index = json.loads(raw)
    except (ValueError, RecursionError):
        raise RunError(f"{damaged} (its header is not JSON); it is damaged") from None
    if not isinstance(index, dict):
        raise RunError(f"{damaged} (its header is not an index); it is damaged")
    metadata = index.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise RunError(f"{damaged} (its metadata is not text); it is damaged")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans = []
    for name, entry in index.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            dtype in _ITEM_BYTES
            and isinstance(shape, list)
            and all(type(d) is int and 0 <= d < 2**40 for d in shape)
            and isinstance(offsets, list)
            and len(offsets) == 2
            and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
            and offsets[1] - offsets[0] == math.prod(shape) * _ITEM_BYTES[dtype]
        ):
            raise RunError(f"{damaged} (entry {shorten(name)} is malformed); it is damaged")
        tensors[name] = (dtype, tuple(shape))
        spans.append(offsets)
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise RunError(f"{damaged} (its tensors overlap or leave gaps); it is damaged")
        position = end
    size = 8 + length + position
    if size != info.st_size:
        raise RunError(
            f"{damaged} (the index says {size:,} bytes, the file has {info.st_size:,}); "
            "it is truncated or damaged"
        )
    return Header(tensors, {str(k): str(v) for k, v in metadata.items()}, size)


def read_tensors(
    path: str | Path, expected: Expected | None = None, optional: tuple[str, ...] = ()
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file, read with bounded memory.

    With ``expected``, the header is checked first: every name there must be present
    with that dtype and shape (names starting with one of ``optional`` may be absent),
    and nothing else may be; only then is the data read, so a file with an extra or
    oversized tensor costs its header, not its size.
    """
    path = Path(path)
    header = read_header(path)
    if expected is not None:
        check_entries(header.tensors, expected, optional, path)
    try:
        data = fileio.read_regular(path, header.size)
        tensors = load_bytes(data)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except ConvlensError as err:
        raise RunError(str(err)) from None
    except (SafetensorError, ValueError) as err:
        raise RunError(
            f"{path} is not a readable safetensors file ({shorten(err)}); it is damaged"
        ) from None
    return tensors, header.metadata


def expected_of(tensors: dict[str, torch.Tensor], prefix: str = "") -> Expected:
    """``{prefix + name: (dtype, shape)}`` for a state dict."""
    return {
        prefix + name: (DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
        for name, t in tensors.items()
    }


def check_entries(found: Expected, expected: Expected, optional: tuple[str, ...], path) -> None:
    """Names, dtypes and shapes ``found`` against ``expected``; one line naming the first
    difference."""
    missing = sorted(k for k in expected if k not in found and not k.startswith(optional))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(k for k in expected if k in found and found[k] != expected[k])
    if missing or extra or wrong:
        what = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected {shorten(extra[0])}"
            if extra
            else f"{wrong[0]} is {found[wrong[0]][0]} {found[wrong[0]][1]}, "
            f"the model needs {expected[wrong[0]][0]} {expected[wrong[0]][1]}"
        )
        raise RunError(
            f"weights in {path} do not fit the model ({what}); the spec and the weights "
            "come from different runs, or the file was altered"
        )


def load_weights(network: torch.nn.Module, path: str | Path) -> None:
    tensors, _ = read_tensors(path, expected_of(network.state_dict()))
    load_state(network, tensors, path)


def load_state(network: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Any) -> None:
    """Load a state dict whose names, dtypes and shapes were already checked."""
    check_entries(expected_of(tensors), expected_of(network.state_dict()), (), path)
    network.load_state_dict(tensors)
