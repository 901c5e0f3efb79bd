"""The inner loops: one training epoch and one evaluation pass, on device tensors.

Designed for speed on small images, where per-step overhead matters as much as the
kernels: the whole dataset lives on the device as one tensor, batches are gathered by
index (no DataLoader, no per-sample Python), loss and accuracy accumulate on the device,
and the host synchronises only every ``sync_every`` steps to feed the progress bar and
to catch a diverging loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from convlens.errors import TrainingDiverged
from convlens.models import inference
from convlens.models.resizing import resized_shape
from convlens.models.tta import tta_views
from convlens.recipe import TrainConfig
from convlens.train.averaging import WeightAverage
from convlens.train.cpu import keep_freed_memory
from convlens.train.lookahead import Lookahead
from convlens.train.runtime import Runtime
from convlens.train.threads import ThreadTuner

# step(done, total, mean loss so far, accuracy so far)
StepCallback = Callable[[int, int, float, float], None]


# Images per forward pass of the network itself when only predicting: activations of 128
# images stay in the caches (a 128 x 64 x 26 x 26 bf16 map is 11 MB, at 500 it is 43 MB);
# measured 1.3-1.5x the images/s of batches of 500 or 1,000 for cnn, bf16 and fp32
# (BENCHMARKS.md). ONNX Runtime's passes take larger batches (pass_batch).
INFERENCE_BATCH = 128
BATCHNORM_REFRESH_IMAGES = 2048  # training images behind the refreshed statistics
BATCHNORM_REFRESH_BATCH = 512


@dataclass(frozen=True)
class EpochResult:
    """One epoch's steps. The loss and accuracy are running means over its steps, taken
    while the weights changed under them: the progress bar's figures, not a measurement
    of the network at the end of the epoch (``train.evaluation`` makes that)."""

    running_loss: float
    running_accuracy: float
    seconds: float  # the steps only; the evaluation phase is timed on its own


#: What the first optimizer of a process imports: torch.optim's constructor (any of its
#: ``_disable_dynamo`` methods) imports ``torch._dynamo``, about 2 s on Zen 1 in a fresh
#: process, for a caller to import ahead (:mod:`convlens.background_import`).
OPTIMIZER_MODULES = ("torch._dynamo",)


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with Keras' epsilon (1e-7) by default, so the lesson's recipe is the lesson's.

    With ``norm_lr_scale`` X != 1 the one-dimensional parameters (batchnorm's weights and
    biases, every bias) form a second parameter group with X times the learning rate and
    the weight decay divided by X, so lr x decay per step is the same for both groups
    (airbench's biases, Keller Jordan 2024, at lr x64). Each group's ``lr_scale`` is what
    the schedule multiplies; group 0 holds the other parameters at lr itself (and a
    single group has no ``lr_scale``: checkpoints from before it still resume).
    """
    params = list(params)
    groups: list[dict] = [{"params": params}]
    if config.norm_lr_scale != 1:
        scale = config.norm_lr_scale
        groups = [
            {"params": [p for p in params if p.ndim > 1], "lr_scale": 1.0},  # lr itself
            {
                "params": [p for p in params if p.ndim <= 1],
                "lr_scale": scale,
                "lr": config.lr * scale,
                "weight_decay": config.weight_decay / scale,
            },
        ]
        groups = [group for group in groups if group["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0,
            weight_decay=config.weight_decay,
        )  # fmt: skip
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    # fused: one kernel per parameter for the whole update (measured 2.6x faster than
    # foreach on a 2-core CPU for the lesson's CNN); needs float parameters on CPU/CUDA.
    fused = all(p.dtype in (torch.float32, torch.float64) for p in params) and all(
        p.device.type in ("cpu", "cuda") for p in params
    )
    return cls(
        groups, lr=config.lr, eps=1e-7, weight_decay=config.weight_decay,
        fused=fused or None, foreach=None if fused else True,
    )  # fmt: skip


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at a global step: constant, or one-cycle (stateless, so resumable).

    One-cycle: linear warm-up over the first ``warmup`` of the steps (0.25) from lr/10
    to lr, then a cosine (or linear, ``anneal``) decay towards lr x ``final_lr_scale``
    (1/1000), which the step after the last would have (so 0 wastes no step).
    """
    if config.schedule == "constant":
        return config.lr
    warmup = int(config.warmup * total_steps)
    if config.warmup > 0:
        warmup = max(1, warmup)
    if step < warmup:
        return config.lr * (0.1 + 0.9 * step / warmup)
    progress = (step - warmup) / max(1, total_steps - warmup)
    shape = 1 - progress if config.anneal == "linear" else 0.5 * (1 + math.cos(math.pi * progress))
    end = config.final_lr_scale
    return config.lr * (end + (1 - end) * shape)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    shift: int = 2,
    *,
    flip: torch.Tensor | None = None,
) -> torch.Tensor:
    """Random translations of up to ``shift`` pixels and horizontal flips: random ones,
    or those of ``flip`` (N,) bool when given (see :func:`alternating_flips`).

    (N, C, H, W) -> (N, C, H, W), in ``x``'s dtype (uint8 pixels stay uint8); all on the
    device, no per-image Python. The mirror and the shifted window are one gather from
    the zero-padded batch (column j of the padded mirror is column W + 2 shift - 1 - j of
    the padded image), with the random draws of the flip, pad, then index version before
    it, so the batches are the same to the bit. That version took a mirrored copy, a
    select and a four-index gather: 4.1 ms of CPU for fast's 256 uint8 images against
    1.4 ms (one busy Sapphire Rapids core; BENCHMARKS.md, "Session 7").
    """
    n, c, h, w = x.shape
    if flip is None:
        flip = torch.rand(n, generator=generator, device="cpu") < 0.5
    flip = flip.to(x.device)
    padded = F.pad(x, (shift, shift, shift, shift))  # (N, C, H + 2 shift, W + 2 shift)
    padded_h, padded_w = h + 2 * shift, w + 2 * shift
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator).to(x.device)
    rows = dy.view(n, 1) + torch.arange(h, device=x.device)  # (N, H)
    cols = dx.view(n, 1) + torch.arange(w, device=x.device)  # (N, W)
    cols = torch.where(flip.view(n, 1), padded_w - 1 - cols, cols)
    where = (rows.view(n, h, 1) * padded_w + cols.view(n, 1, w)).view(n, 1, h * w)
    pixels = padded.reshape(n, c, padded_h * padded_w)
    return pixels.gather(2, where.expand(n, c, h * w)).view(n, c, h, w)


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, h, w) with the longer side ``size`` pixels
    (:func:`~convlens.models.resizing.resized_shape`), antialiased bilinear: each output
    pixel averages the input pixels under it, as a smaller photo of the garment would,
    where plain bilinear would sample and alias the fine stripes of a shirt. The memory
    format (channels_last or not) is kept."""
    _, height, width = resized_shape(tuple(x.shape[1:]), size)
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def alternating_flips(count: int, seed: int, epoch: int) -> torch.Tensor:
    """(count,) bool: which of the training images epoch ``epoch`` (from 1) mirrors when
    flips alternate. Epoch 1 tosses a coin per image (seeded); every later epoch mirrors
    exactly the images the epoch before did not, so each image is seen both ways in any
    two epochs in a row.

    Random flips leave an image unmirrored (or mirrored) for several epochs in a row by
    chance, which a short run cannot afford; alternating them is one of the ablations of
    Keller Jordan's CIFAR-10 speed runs (airbench, "94% on CIFAR-10 in 3.29 seconds",
    2024), where it saved training epochs at equal accuracy.
    """
    first = torch.rand(count, generator=torch.Generator().manual_seed(seed * 1_000_003 - 1))
    return (first < 0.5) ^ (epoch % 2 == 0)


def train_epoch(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    runtime: Runtime,
    *,
    epoch: int,
    on_step: StepCallback | None = None,
    sync_every: int = 50,
    threads: ThreadTuner | None = None,
    average: WeightAverage | None = None,
    lookahead: Lookahead | None = None,
) -> EpochResult:
    """One pass over ``images`` (N, C, H, W) and ``labels`` (N,), both on the device, or
    over ``config.epoch_images`` of them drawn at random for this epoch.

    Images are uint8 pixels or floats in 0..1; :meth:`Runtime.prepare` scales uint8.

    The shuffle order and augmentation depend only on (seed, epoch), so a resumed run
    sees the same batches as an uninterrupted one. ``threads`` is told each step's
    seconds (on a CPU every kernel has finished when the step returns) and may change
    torch's thread count between steps. ``average`` (``TrainConfig.ema``) folds the
    weights in after every step; ``lookahead`` (``TrainConfig.lookahead``) pulls them
    back to its slow weights every k steps, before the average sees them. With
    ``config.resize`` each batch is scaled down to the epoch's size
    (:meth:`TrainConfig.input_size`) after augmentation.
    """
    if runtime.device.type == "cpu":
        keep_freed_memory()  # no page faults for each step's activations
    network.train()
    n = images.shape[0]
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    torch.manual_seed(config.seed * 1_000_003 + epoch)  # dropout masks
    # With ``epoch_images`` the epoch takes the head of the same permutation: a fresh
    # draw each epoch, and without it the very batches of a full epoch.
    count = min(n, config.epoch_images or n)
    order = torch.randperm(n, generator=generator)[:count].to(images.device)
    steps = config.steps_per_epoch(n)
    flips = (
        alternating_flips(n, config.seed, epoch).to(images.device)
        if config.augment and config.flip == "alternate"
        else None
    )
    total_steps = steps * config.epochs
    size = config.input_size(epoch)  # None: the data's own size
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for step in range(steps):
        step_start = time.perf_counter()
        index = order[step * config.batch_size : (step + 1) * config.batch_size]
        x, y = images[index], labels[index]
        if config.augment:
            x = augment_batch(x, generator, flip=None if flips is None else flips[index])
        x = runtime.prepare(x)
        if size is not None:
            x = resize_batch(x, size)
        if config.schedule != "constant":
            lr = learning_rate(config, (epoch - 1) * steps + step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
        with runtime.autocast():
            logits = network(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps_done = (epoch - 1) * steps + step + 1
        if lookahead is not None:
            lookahead.update(steps_done)
        if average is not None:
            average.update(steps_done)
        batch = y.shape[0]
        seen += batch
        loss_sum += loss.detach() * batch
        correct += (logits.detach().argmax(dim=1) == y).sum()
        if threads is not None and batch == config.batch_size:  # a short last batch is no figure
            threads.observe(time.perf_counter() - step_start)  # the progress bar's time left out
        if (step + 1) % sync_every == 0 or step + 1 == steps:
            mean_loss = loss_sum.item() / seen
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(
                    f"the loss became {mean_loss} at epoch {epoch}, step {step + 1}; "
                    "lower the learning rate (--lr) and try again"
                )
            if on_step is not None:
                on_step(step + 1, steps, mean_loss, correct.item() / seen)
    if runtime.device.type == "cuda":
        torch.cuda.synchronize(runtime.device)
    seconds = time.perf_counter() - start
    return EpochResult(loss_sum.item() / seen, correct.item() / seen, seconds)


@torch.no_grad()
def refresh_batchnorm_statistics(
    network: torch.nn.Module,
    images: torch.Tensor,
    runtime: Runtime,
    *,
    seed: int,
    count: int = BATCHNORM_REFRESH_IMAGES,
    batch_size: int = BATCHNORM_REFRESH_BATCH,
    on_batch: Callable[[], None] | None = None,
) -> None:
    """Recompute every batchnorm layer's running mean and variance from the weights as
    they are now ("precise BN"), over ``count`` seeded (un-augmented) training ``images``
    (N, C, H, W) in batches of ``batch_size``; a no-op for a network without batchnorm.

    The running averages (momentum 0.1) trail the weights by tens of steps: harmless
    after an epoch of Fashion-MNIST, but after a short run on a small subset the test
    figures came out near chance (the ``fast`` preset: 9.8% test after 8 steps, 44%
    train). Training itself never reads these statistics, so the trajectory of a run
    is unchanged; evaluation, saved weights and checkpoints get the fresh ones. The cost
    is a forward pass over ``count`` images: 0.3 s an epoch for ``fast`` on 2 cores.
    ``on_batch()`` is called after each batch (the evaluation phase's progress).
    """
    norms = _batchnorms(network)
    if not norms:
        return
    was_training = network.training
    network.eval()  # dropout off: the statistics of the network as it will be evaluated
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.train()
        norm.reset_running_stats()
        norm.momentum = None  # a plain average over the batches below
    order = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed))
    order = order[:count].to(images.device)
    for begin in range(0, order.shape[0], batch_size):
        batch = order[begin : begin + batch_size]
        if batch.shape[0] < 2 and begin > 0:
            break  # batchnorm needs two images for a variance; a lone leftover adds nothing
        with runtime.autocast():
            network(runtime.prepare(images[batch]))
        if on_batch is not None:
            on_batch()
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    network.train(was_training)


def has_batchnorm(network: torch.nn.Module) -> bool:
    return bool(_batchnorms(network))


def _batchnorms(network: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in network.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


@dataclass(frozen=True)
class ViewLogits:
    """Logits (N, K) float32 of one pass: with the test-time views averaged, and of the
    image alone (the first view, computed anyway: a by-product, not a second pass)."""

    views: torch.Tensor
    plain: torch.Tensor

    def at(self, indices: torch.Tensor) -> ViewLogits:
        """The rows ``indices`` (M,) of both (the same tensor stays one)."""
        views = self.views[indices]
        return ViewLogits(views, views if self.plain is self.views else self.plain[indices])

    def scores(self, labels: torch.Tensor) -> tuple[Scores, Scores]:
        """(with the views averaged, the image alone) against ``labels`` (N,)."""
        views = Scores.of(self.views, labels)
        return views, views if self.plain is self.views else Scores.of(self.plain, labels)


def pass_batch(network: torch.nn.Module, runtime: Runtime, image_shape: tuple[int, ...]) -> int:
    """Images a batch for a pass over many images of ``image_shape`` (C, H, W), such as an
    evaluation's test set, in ``runtime``: in fp32 on the CPU what the inference engine
    runs fastest (:func:`convlens.models.inference.pass_batch`: 512 28x28 images through
    ONNX Runtime), else :data:`INFERENCE_BATCH`."""
    if runtime.device.type == "cpu" and runtime.precision == "fp32":
        return inference.pass_batch(network, image_shape, INFERENCE_BATCH)
    return INFERENCE_BATCH


@torch.no_grad()
def predict_view_logits(
    network: torch.nn.Module,
    images: torch.Tensor,
    runtime: Runtime,
    *,
    batch_size: int = INFERENCE_BATCH,
    tta_flip: bool = False,
    tta_shift: bool = False,
    on_batch: Callable[[], None] | None = None,
) -> ViewLogits:
    """Logits for ``images`` (N, C, H, W), uint8 or float 0..1, with and without the
    test-time views (:mod:`convlens.models.tta`); ``on_batch()`` after each batch. With
    views the logits are the log of their weighted mean probabilities; without, both
    fields are the same tensor.

    In fp32 the fast inference engine computes them (:mod:`convlens.models.inference`:
    ONNX Runtime or a channels_last copy, equal to the network to 1e-5); in bf16 the
    network itself under autocast, as it trains.
    """
    if runtime.device.type == "cpu":
        keep_freed_memory()
    network.eval()

    def forward(x: torch.Tensor) -> torch.Tensor:
        if runtime.precision == "fp32":
            return inference.logits(network, x)
        with runtime.autocast():
            return network(x).float()

    averaged, alone = [], []
    for start in range(0, images.shape[0], batch_size):
        x = runtime.prepare(images[start : start + batch_size])
        if tta_flip or tta_shift:
            views = tta_views(x, flip=tta_flip, shift=tta_shift)
            plain = forward(views[0][1])  # the image itself comes first
            mean = views[0][0] * plain.softmax(-1)
            for weight, view in views[1:]:  # summed in order, as sum() would
                mean = mean + weight * forward(view).softmax(-1)
            averaged.append(torch.log(mean / sum(w for w, _ in views)))
        else:
            plain = forward(x)
            averaged.append(plain)
        alone.append(plain)
        if on_batch is not None:
            on_batch()
    views_logits = torch.cat(averaged)
    return ViewLogits(views_logits, torch.cat(alone) if tta_flip or tta_shift else views_logits)


@dataclass(frozen=True)
class Scores:
    """A labelled set judged once: mean loss, accuracy, predicted labels (N,)."""

    loss: float
    accuracy: float
    predicted: torch.Tensor

    @classmethod
    def of(cls, logits: torch.Tensor, labels: torch.Tensor) -> Scores:
        labels = labels.to(logits.device)
        predicted = logits.argmax(dim=1)
        loss = F.cross_entropy(logits, labels).item()
        return cls(loss, (predicted == labels).float().mean().item(), predicted)


def evaluate_views(
    network: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    runtime: Runtime,
    *,
    tta_flip: bool = False,
    tta_shift: bool = False,
    batch_size: int = INFERENCE_BATCH,
    on_batch: Callable[[], None] | None = None,
) -> tuple[Scores, Scores]:
    """(with the views averaged, the image alone) on a labelled set, from one pass."""
    logits = predict_view_logits(
        network,
        images,
        runtime,
        tta_flip=tta_flip,
        tta_shift=tta_shift,
        batch_size=batch_size,
        on_batch=on_batch,
    )
    return logits.scores(labels)
