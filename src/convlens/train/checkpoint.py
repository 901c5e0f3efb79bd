"""Training state in safetensors: no pickle, so loading a file runs no code.

* ``model.safetensors``: the network's weights, written and read by
  :mod:`convlens.models.weights` (a run is loaded without the training code).
* ``checkpoint.safetensors``: ``model/*``, ``optim/*`` (the optimizer's tensors),
  ``best/*`` (best-epoch weights, if kept), ``average/*`` (the averaged weights of a
  recipe with ``ema``, :mod:`convlens.train.averaging`) and ``slow/*`` (the slow weights
  of a recipe with ``lookahead``, :mod:`convlens.train.lookahead`), with the epoch,
  optimizer hyper-parameters and the metric history as JSON metadata. One file, written
  atomically, so the state after an epoch is complete or absent, never torn.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as save_bytes

from convlens import fileio
from convlens.errors import RunError, shorten
from convlens.models.weights import (
    DTYPES,
    Expected,
    check_entries,
    expected_of,
    load_state,
    read_header,
    read_tensors,
)
from convlens.train.lookahead import Lookahead


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
    average: torch.nn.Module | None = None,
    slow: dict[str, torch.Tensor] | None = None,
) -> None:
    tensors: dict[str, torch.Tensor] = {
        f"model/{k}": v.detach().contiguous().cpu() for k, v in network.state_dict().items()
    }
    if average is not None:
        for k, v in average.state_dict().items():
            tensors[f"average/{k}"] = v.detach().contiguous().cpu()
    for k, v in (slow or {}).items():
        tensors[f"slow/{k}"] = v.detach().contiguous().cpu()
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
    path: str | Path,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    steps_per_epoch: int | None = None,
    average: torch.nn.Module | None = None,
    lookahead: Lookahead | None = None,
) -> TrainingState:
    """Restore ``network`` and ``optimizer`` (and ``average``, the averaged copy of a
    recipe with ``ema``, and ``lookahead``'s slow weights, which the checkpoint must then
    hold) from a checkpoint, after checking all of it.

    Every tensor's name, dtype and shape is checked against the model and the optimizer
    before the data is read (a moment of the wrong shape would make fused Adam write
    out of bounds), and every field of the metadata before anything is restored: the
    epoch, the history (one row per epoch, numbers only), the best epoch, the optimizer's
    hyper-parameters (same keys and kinds as the optimizer's own) and its step counts
    (equal for every parameter, at most ``epoch * steps_per_epoch``).
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    slots = _optimizer_slots(optimizer)
    model_expected = expected_of(network.state_dict())
    expected: Expected = {f"model/{k}": v for k, v in model_expected.items()}
    expected |= {f"best/{k}": v for k, v in model_expected.items()}
    if average is not None:
        expected |= {f"average/{k}": v for k, v in model_expected.items()}
    if lookahead is not None:
        expected |= {f"slow/{k}": v for k, v in expected_of(lookahead.state_dict()).items()}
    for index, param in enumerate(params):
        for slot, scalar in slots.items():
            shape = () if scalar else tuple(param.shape)
            expected[f"optim/{index}/{slot}"] = (DTYPES[torch.float32], shape)
    header = read_header(path)
    metadata = header.metadata

    def damaged(what: str) -> RunError:
        return RunError(
            f"{path} has damaged training state ({what}); train the run again, or resume "
            "from a good copy"
        )

    if metadata.get("format") != "convlens-checkpoint-1":
        raise RunError(f"{path} is not a convlens checkpoint")
    epoch = _whole(metadata.get("epoch"), 0, MAX_EPOCHS)
    if epoch is None:
        raise damaged(f"epoch {shorten(metadata.get('epoch'))} is not a whole number of epochs")
    history = _json(metadata.get("history"))
    if not (
        isinstance(history, list)
        and len(history) == epoch
        and all(_history_row(row, i + 1) for i, row in enumerate(history))
    ):
        raise damaged(f"its history is not {epoch} rows of numbers for epochs 1 to {epoch}")
    best_epoch = _json(metadata.get("best_epoch", "null"))
    if best_epoch is not None and not (type(best_epoch) is int and 1 <= best_epoch <= epoch):
        raise damaged(f"best epoch {shorten(best_epoch)} is not one of epochs 1 to {epoch}")
    groups = _json(metadata.get("param_groups"))
    if not _same_groups(groups, optimizer.state_dict()["param_groups"]):
        raise damaged("its optimizer settings do not match the optimizer of this recipe")
    has_best = any(name.startswith("best/") for name in header.tensors)
    if has_best != (best_epoch is not None):
        raise damaged("the best epoch and the best weights disagree")
    optim_found = {name for name in header.tensors if name.startswith("optim/")}
    by_param = {name.split("/")[1] for name in optim_found}
    if any(
        len([n for n in optim_found if n.split("/")[1] == index]) != len(slots)
        for index in by_param
    ):
        raise damaged("a parameter has only part of its optimizer state")
    check_entries(header.tensors, expected, ("optim/",) if has_best else ("best/", "optim/"), path)

    tensors, _ = read_tensors(path)
    model = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    load_state(network, model, path)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    steps = {float(slot["step"]) for slot in state.values() if "step" in slot}
    limit = epoch * steps_per_epoch if steps_per_epoch is not None else math.inf
    if len(steps) > 1 or any(not (s == int(s) and 0 < s <= limit) for s in steps):
        raise damaged(f"its optimizer step counts {sorted(steps)[:3]} do not fit {epoch} epochs")
    best = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
    averaged = {k[len("average/") :]: v for k, v in tensors.items() if k.startswith("average/")}
    slow = {k[len("slow/") :]: v for k, v in tensors.items() if k.startswith("slow/")}
    if any(
        not torch.isfinite(v).all()
        for v in [*model.values(), *best.values(), *averaged.values(), *slow.values()]
    ):
        raise damaged("the weights hold NaN or infinite values")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    _match_memory_format(optimizer)
    if average is not None:
        load_state(average, averaged, path)
    if lookahead is not None:
        lookahead.load_state_dict(slow)
    return TrainingState(
        epoch=epoch, history=history, best_epoch=best_epoch, best_state=best or None
    )


def _match_memory_format(optimizer: torch.optim.Optimizer) -> None:
    """Give each parameter's moments its own memory layout again.

    A checkpoint keeps tensors contiguous (NCHW); a channels_last conv weight's moments
    came back NCHW while the weight and its gradient stay NHWC, and the fused Adam step
    pairs the three element by element in memory order: every conv with more than one
    input channel resumed with its moments shuffled (a resumed run parted from the
    uninterrupted one by 0.2% train loss within an epoch on a two-conv test net).
    """
    for group in optimizer.param_groups:
        for param in group["params"]:
            slots = optimizer.state.get(param, {})
            for key, value in slots.items():
                if torch.is_tensor(value) and value.shape == param.shape and value.ndim == 4:
                    slots[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


#: More epochs than any checkpoint can honestly claim.
MAX_EPOCHS = 1_000_000


def _optimizer_slots(optimizer: torch.optim.Optimizer) -> dict[str, bool]:
    """The per-parameter tensors ``optimizer`` keeps: name -> whether it is a scalar."""
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        slots = {"step": True, "exp_avg": False, "exp_avg_sq": False}
        if optimizer.defaults.get("amsgrad"):
            slots["max_exp_avg_sq"] = False
        return slots
    if isinstance(optimizer, torch.optim.SGD):
        return {"momentum_buffer": False} if optimizer.defaults.get("momentum") else {}
    raise RunError(f"checkpoints of {type(optimizer).__name__} are not supported")


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return _INVALID
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID


_INVALID = object()


def _whole(value: Any, low: int, high: int) -> int | None:
    """``value`` (an int, or its decimal text) if it is a whole number in low..high."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 9):
            return None
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        return None
    return value


def _history_row(row: Any, epoch: int) -> bool:
    return (
        isinstance(row, dict)
        and all(
            isinstance(k, str) and type(v) in (int, float) and math.isfinite(v)
            for k, v in row.items()
        )
        and row.get("epoch") == epoch
    )


def _same_groups(groups: Any, own: list[dict[str, Any]]) -> bool:
    """Same number of groups, same keys, same parameter indices, same kinds of value."""
    if not isinstance(groups, list) or len(groups) != len(own):
        return False
    for given, mine in zip(groups, own, strict=True):
        if not isinstance(given, dict) or set(given) != set(mine):
            return False
        if given["params"] != list(mine["params"]):
            return False
        for key, value in mine.items():
            if key != "params" and not _same_kind(given[key], value):
                return False
    return True


def _same_kind(given: Any, mine: Any) -> bool:
    if mine is None or isinstance(mine, bool):
        return given is None or isinstance(given, bool)
    if isinstance(mine, int | float):
        return type(given) in (int, float) and math.isfinite(given)
    if isinstance(mine, tuple | list):
        return (
            isinstance(given, list)
            and len(given) == len(mine)
            and all(_same_kind(g, m) for g, m in zip(given, mine, strict=True))
        )
    return isinstance(given, type(mine))
