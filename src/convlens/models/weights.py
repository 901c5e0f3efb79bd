"""A network's weights in safetensors (``model.safetensors``): no pickle, so loading a
file runs no code. The spec travels in the metadata, so a weights file says what it fits.

Training checkpoints (:mod:`convlens.train.checkpoint`) use the same reading and
fitting rules; they live here, below the run folder, so loading a run needs no training
code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from convlens import fileio
from convlens.errors import RunError


def save_weights(network: torch.nn.Module, path: str | Path, spec: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in network.state_dict().items()}
    metadata = {"format": "convlens-weights-1"}
    if spec is not None:
        metadata["spec"] = json.dumps(spec)
    fileio.write_bytes(path, save_bytes(tensors, metadata=metadata))


def read_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = load_bytes(data)
        metadata = _metadata(data)
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except (SafetensorError, ValueError, OSError, json.JSONDecodeError) as err:
        raise RunError(
            f"{path} is not a readable safetensors file ({err}); it is damaged"
        ) from None
    return tensors, metadata


def load_weights(network: torch.nn.Module, path: str | Path) -> None:
    tensors, _ = read_tensors(path)
    load_state(network, tensors, path)


def load_state(network: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Any) -> None:
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in expected if k in tensors and tensors[k].shape != expected[k].shape)
    if missing or extra or wrong:
        what = (
            f"missing {missing[0]}"
            if missing
            else f"unexpected {extra[0]}"
            if extra
            else f"{wrong[0]} has shape {tuple(tensors[wrong[0]].shape)}, "
            f"the model needs {tuple(expected[wrong[0]].shape)}"
        )
        raise RunError(
            f"weights in {path} do not fit the model ({what}); the spec and weights come "
            "from different runs"
        )
    network.load_state_dict(tensors)


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (header: 8-byte length, then JSON)."""
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__") or {})
