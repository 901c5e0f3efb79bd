"""Torch modules behind single layer specs: same values as the plain ops, faster layouts."""

from __future__ import annotations

import torch

from convlens.models.blocks import Flatten


def test_flatten_matches_nn_flatten_forward_and_backward() -> None:
    x = torch.randn(3, 4, 5, 6, requires_grad=True)
    reference = torch.randn(3, 4 * 5 * 6)
    (Flatten()(x) * reference).sum().backward()
    ours = x.grad.clone()
    x.grad = None
    (torch.nn.Flatten()(x) * reference).sum().backward()
    torch.testing.assert_close(ours, x.grad)


def test_flatten_of_channels_last_keeps_chw_order_and_returns_channels_last_grad() -> None:
    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = Flatten()(x)
    # C, H, W order, as for an NCHW tensor: the dense weights do not depend on the layout.
    torch.testing.assert_close(y, x.detach().contiguous().flatten(1))
    upstream = torch.randn_like(y)
    y.backward(upstream)
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x.grad, upstream.view(2, 3, 4, 4))


def test_flatten_of_contiguous_input_keeps_contiguous_grad() -> None:
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    Flatten()(x).sum().backward()
    assert x.grad.is_contiguous()
