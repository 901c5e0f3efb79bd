"""Have a network's weights changed since an engine was built from them? A cheap answer.

An engine built from a network (an ONNX Runtime session, a channels_last copy) answers
for the weights it was built from; any later change must build it again. Asking "did
anything change" on every call must cost far less than the call itself (one image
through ONNX Runtime: about 0.1 ms), so :class:`WeightWatch` keeps the network's tensors
listed once and compares three signals that PyTorch keeps for nothing:

- **version counters** (``tensor._version``): every in-place write through an autograd
  -visible op raises its tensor's counter: ``copy_`` (``load_state_dict``), ``mul_``
  under ``torch.no_grad()`` in a notebook, every non-fused optimizer. A fused optimizer
  step (Adam's one-kernel update, which convlens trains with) writes through the data
  pointer without raising them, so an optimizer-step hook raises them for it
  (:func:`torch.autograd.graph.increment_version`, which is what that function is for;
  only for a step with ``fused=True``: every other one raises them itself).
- **storage addresses** (``tensor.data_ptr()``): ``module.to(...)``, ``.float()`` and an
  assignment to ``parameter.data`` swap a tensor's storage without a version change.
- **a registration count**: assigning a new ``nn.Parameter``, buffer or submodule
  anywhere (``module.weight = ...``, ``load_state_dict(assign=True)``) goes through
  torch's registration hooks; the watch then lists the tensors again and compares them
  one by one, so a new network built elsewhere costs one re-listing, not a rebuild.

The optimizer-step and registration hooks are torch's process-wide ones (it has no
per-network kind); they are installed at the first :class:`WeightWatch`, not at import.

Not seen: a write through ``tensor.data`` (``parameter.data.mul_(2)``: a fresh tensor
with its own counter, sharing the storage); call ``convlens.models.inference.forget``
after one. Measured on the lesson's ``cnn`` (BENCHMARKS.md, "Session 5: one image in
0.15 ms"): the check takes 2.6 us against 13.3 us for the per-call walk over every
module's parameter and buffer dicts it replaces.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.modules import module as module_hooks
from torch.optim.optimizer import register_optimizer_step_post_hook

from convlens.models.small_map_conv import SmallMapConv2d

_VERSION = operator.attrgetter("_version")
_STORAGE = torch.Tensor.data_ptr
_TRAINING = operator.attrgetter("training")

# Module types whose forward ignores ``training`` (the layers convlens builds and their
# containers): their flag is not read. Any other type (batchnorm, dropout, a subclass,
# the network itself) is.
_TRAINING_BLIND = frozenset(
    {nn.Conv2d, SmallMapConv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d, nn.Identity}
    | {nn.Sequential}
    | {nn.ModuleDict, nn.ModuleList, nn.Flatten, nn.ReLU, nn.LeakyReLU, nn.ELU}
    | {nn.Sigmoid, nn.Tanh, nn.Softmax, nn.GELU, nn.SiLU}
)

# How many parameters, buffers and submodules have been registered in this process
# (by any module): a change means a watched network may hold new tensors.
_registrations = [0]


class WeightWatch:
    """What a network's parameters and buffers are now, and whether they still are.

    ``usable``: every tensor is on the CPU and every floating-point one is fp32, and none
    was created under ``torch.inference_mode`` (those have no version counter): what
    the fast engines need.
    """

    def __init__(self, network: nn.Module) -> None:
        if not _hooks:
            _watch_this_process()
        self.registrations = _registrations[0]
        self.modules = tuple(network.modules())
        self.tensors = tuple(_tensors(self.modules))
        self.moded = tuple(m for m in self.modules if type(m) not in _TRAINING_BLIND)
        self.usable = all(_usable(tensor) for tensor in self.tensors)
        self.versions = sum(map(_VERSION, self.tensors)) if self.usable else -1
        self.storage = tuple(map(_STORAGE, self.tensors))

    def unchanged(self) -> bool:
        """True while no tensor was written, swapped or replaced since the snapshot.

        About 2 us for the lesson's cnn (8 tensors): two C-level passes over a tuple.
        Version counters only grow, so their sum changes with any one of them.
        """
        if not self.usable:
            return False
        if self.registrations != _registrations[0] and not self._same_tensors():
            return False
        return self.versions == sum(map(_VERSION, self.tensors)) and self.storage == tuple(
            map(_STORAGE, self.tensors)
        )

    def in_eval_mode(self) -> bool:
        """No module of the network whose forward depends on it (batchnorm, dropout,
        the network itself, anything not known to ignore it) is in training mode."""
        return not any(map(_TRAINING, self.moded))

    def _same_tensors(self) -> bool:
        """After a registration somewhere: are these still the network's modules and
        tensors? (If so, the snapshot is brought up to date with the count.)"""
        network = self.modules[0]
        modules = tuple(network.modules())
        same = len(modules) == len(self.modules) and all(
            a is b for a, b in zip(modules, self.modules, strict=True)
        )
        tensors = tuple(_tensors(modules)) if same else ()
        same = same and len(tensors) == len(self.tensors)
        same = same and all(a is b for a, b in zip(tensors, self.tensors, strict=True))
        if same:
            self.registrations = _registrations[0]
        return same


def _tensors(modules: tuple[nn.Module, ...]) -> Iterator[torch.Tensor]:
    for module in modules:  # the dicts themselves: 5x faster than .parameters()
        for tensor in (*module._parameters.values(), *module._buffers.values()):
            if tensor is not None:
                yield tensor


def _usable(tensor: torch.Tensor) -> bool:
    if tensor.device.type != "cpu" or tensor.is_inference():
        return False
    return not tensor.is_floating_point() or tensor.dtype == torch.float32


def _count_registration(*args: object) -> None:
    _registrations[0] += 1


def _fused_step_writes(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
    """After any optimizer step: raise the version counter of every parameter a fused
    step may have updated (it writes without raising them; twice is harmless). Other
    steps raise their own: the in-place ops of SGD, foreach and for-loop Adam do, and
    torch runs a fused step only when a group asks ``fused=True`` (the invalidation
    tests step SGD, foreach, fused and default Adam, so a torch that starts fusing
    by default fails them)."""
    stepped = [
        p
        for group in optimizer.param_groups
        if group.get("fused")
        for p in group["params"]
        if p.grad is not None
    ]
    if stepped:
        torch.autograd.graph.increment_version(stepped)


_hooks: list[object] = []  # torch's handles, once installed
_installing = threading.Lock()


def _watch_this_process() -> None:
    """Install the hooks at the first watch: torch offers them for the whole process
    only (no per-module registration hook exists), so a process that never asks the
    fast engines (a CLI training without evaluation in fp32, an export) runs without."""
    with _installing:
        if _hooks:
            return
        _hooks.extend(
            [
                module_hooks.register_module_parameter_registration_hook(_count_registration),
                module_hooks.register_module_buffer_registration_hook(_count_registration),
                module_hooks.register_module_module_registration_hook(_count_registration),
                register_optimizer_step_post_hook(_fused_step_writes),
            ]
        )
