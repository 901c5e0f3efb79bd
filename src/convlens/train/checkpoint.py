"""Training state in safetensors: no pickle, so loading a file runs no code.

* ``model.safetensors``: the network's weights, written and read by
  :mod:`convlens.models.weights` (a run is loaded without the training code).
* ``checkpoint.safetensors``: ``model/*``, ``optim/*`` (the optimizer's tensors) and
  ``best/*`` (best-epoch weights, if kept), with the epoch, optimizer hyper-parameters
  and the metric history as JSON metadata. One file, written atomically, so the state
  after an epoch is complete or absent, never torn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save as save_bytes

from convlens import fileio
from convlens.errors import RunError
from convlens.models.weights import load_state, read_tensors


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
    load_state(network, model, path)
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
