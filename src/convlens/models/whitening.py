"""A frozen first layer whose filters come from the data: patch whitening.

Each ``p x p`` patch of the input (C channels, so ``d = C p^2`` numbers) is centred by
the training images' mean patch and projected on the eigenvectors of their patch
covariance, each divided by ``sqrt(eigenvalue + epsilon)``: the ``d`` outputs are
uncorrelated with unit variance over the training patches (the small directions, fine
detail and noise, are damped by ``epsilon``). Each filter comes with its negative, so
a following ReLU keeps both signs: ``2 d`` channels. The filters are computed once, at
the start of a run, from its training images (:func:`fit_whitening`), and are never
trained; they live in the weights file like any other, so a saved run predicts as it
did.

Keller Jordan's CIFAR-10 speed runs start this way (airbench, "94% on CIFAR-10 in 3.29
seconds", 2024: 2x2 patches, +/- pairs, frozen), where it saved epochs at equal
accuracy; BENCHMARKS.md says what it did on Fashion-MNIST here.
"""

from __future__ import annotations

import torch
from torch import nn

# Patches behind the covariance: the first images of the training set (as airbench
# does with 5,000 CIFAR images); 28x28 Fashion-MNIST gives 196 2x2 patches an image.
FIT_IMAGES = 5000


class PatchWhitening(nn.Conv2d):
    """(N, C, H, W) -> (N, 2 C p^2, H', W'): a ``p x p`` convolution with frozen filters.

    An ``nn.Conv2d`` (same ``weight`` and ``bias`` names) whose parameters do not
    require gradients: the optimizer leaves them alone, the summary counts them as
    non-trainable, and an ONNX export is one Conv node. Until :meth:`fit` is called the
    filters are the builder's initial ones.
    """

    def __init__(self, in_channels: int, patch: int, stride: int, epsilon: float) -> None:
        super().__init__(in_channels, 2 * in_channels * patch * patch, patch, stride, bias=True)
        self.epsilon = epsilon
        self.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> None:
        """Set the filters from ``images`` (N, C, H, W) floats, as this layer will see them."""
        weight, bias = whitening_filters(
            patches_of(images.float(), self.kernel_size[0], self.stride[0]), self.epsilon
        )
        kernel_shape = self.weight.shape[1:]
        self.weight.copy_(torch.cat([weight, -weight]).view(-1, *kernel_shape))
        self.bias.copy_(torch.cat([bias, -bias]))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, epsilon={self.epsilon}, frozen"


def patches_of(images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """(N, C, H, W) -> (M, C p^2): every ``p x p`` patch the layer's windows cover, each
    flattened in a convolution weight's (C, p, p) order."""
    c = images.shape[1]
    windows = images.unfold(2, patch, stride).unfold(3, patch, stride)  # (N, C, H', W', p, p)
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * patch * patch)


def whitening_filters(patches: torch.Tensor, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, d) patches -> (weight (d, d), bias (d,)) with ``weight @ p + bias`` whitened.

    Row k of ``weight`` is the covariance's k-th eigenvector (largest eigenvalue first)
    over ``sqrt(eigenvalue_k + epsilon)``, signed so that its largest entry is positive
    (an eigenvector's sign is arbitrary; this makes the filters reproducible), and
    ``bias = -weight @ mean``, so each output has mean 0 over the patches. In float64:
    the smallest eigenvalues of natural image patches are 100-1000x below the largest.
    """
    patches = patches.double()
    mean = patches.mean(0)
    centred = patches - mean
    covariance = centred.T @ centred / patches.shape[0]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    rows = eigenvectors.T  # (d, d): one eigenvector per row
    largest = rows.gather(1, rows.abs().argmax(1, keepdim=True))
    rows = rows * torch.sign(largest)
    weight = rows / torch.sqrt(eigenvalues.clamp_min(0) + epsilon).unsqueeze(1)
    return weight.float(), (-weight @ mean).float()


@torch.no_grad()
def fit_whitening(network: nn.Module, images) -> int:
    """Fit every :class:`PatchWhitening` block of ``network`` (a :class:`Network`) to
    the first :data:`FIT_IMAGES` of ``images`` (N, C, H, W; a tensor or an array, uint8
    pixels or floats in 0..1), passed through the layers before it. Returns how many
    were fitted; a network without one is left as it was.
    """
    blocks = getattr(network, "blocks", {})
    names = [name for name, block in blocks.items() if _whitening_of(block) is not None]
    if not names:
        return 0
    x = torch.as_tensor(images[:FIT_IMAGES]).cpu()
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()  # as training scales
    was_training = network.training
    network.eval()  # a batchnorm before it normalises with its (initial) statistics
    try:
        for name, block in blocks.items():
            layer = _whitening_of(block)
            if layer is not None:
                layer.fit(x)
            x = block(x)
            if name == names[-1]:
                break
    finally:
        network.train(was_training)
    return len(names)


def _whitening_of(block: nn.Module) -> PatchWhitening | None:
    for module in block.modules():
        if isinstance(module, PatchWhitening):
            return module
    return None
