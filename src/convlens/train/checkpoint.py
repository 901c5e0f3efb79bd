"""Weights and training state in safetensors: no pickle, so loading a file runs no code.

* ``model.safetensors``: the network's state dict, with the spec in the metadata.
* ``checkpoint.safetensors``: ``model/*``, ``optim/*`` (the optimizer's tensors) and
  ``best/*`` (best-epoch weights, if kept), with the epoch, optimizer hyper-parameters
  and the metric history as JSON metadata. One file, written atomically, so the state
  after an epoch is complete or absent, never torn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
    _load_state(network, tensors, path)


def _load_state(network: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Any) -> None:
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


@dataclass
class TrainingState:
    """What resuming needs: the epoch reached, the optimizer, the history, the best epoch."""

    epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None


def save_checkpoint(
    path: str | Path,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainingState,
) -> None:
    tensors: dict[str, torch.Tensor] = {
        f"model/{k}": v.detach().contiguous().cpu() for k, v in network.state_dict().items()
    }
    optim_state = optimizer.state_dict()
    for index, slots in optim_state["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim/{index}/{key}"] = value.detach().contiguous().cpu()
    if state.best_state is not None:
        for k, v in state.best_state.items():
            tensors[f"best/{k}"] = v.detach().contiguous().cpu()
    metadata = {
        "format": "convlens-checkpoint-1",
        "epoch": str(state.epoch),
        "best_epoch": json.dumps(state.best_epoch),
        "history": json.dumps(state.history),
        "param_groups": json.dumps(optim_state["param_groups"]),
    }
    fileio.write_bytes(path, save_bytes(tensors, metadata=metadata))


def load_checkpoint(
    path: str | Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> TrainingState:
    tensors, metadata = read_tensors(path)
    if metadata.get("format") != "convlens-checkpoint-1":
        raise RunError(f"{path} is not a convlens checkpoint")
    model = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    _load_state(network, model, path)
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            slots.setdefault(int(index), {})[name] = value
    try:
        param_groups = json.loads(metadata["param_groups"])
        optimizer.load_state_dict({"state": slots, "param_groups": param_groups})
        best = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
        return TrainingState(
            epoch=int(metadata["epoch"]),
            history=json.loads(metadata["history"]),
            best_epoch=json.loads(metadata.get("best_epoch", "null")),
            best_state=best or None,
        )
    except (KeyError, ValueError, TypeError) as err:
        raise RunError(f"{path} has damaged training state ({err}); train the run again") from None


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors blob (header: 8-byte length, then JSON)."""
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__") or {})
