"""Torch modules behind single layer specs: same values as the plain ops, faster layouts."""

from __future__ import annotations

import torch

from convlens.models.blocks import Dropout, Flatten


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


def test_dropout_zeroes_about_rate_and_keeps_the_expected_value() -> None:
    torch.manual_seed(0)
    dropout = Dropout(0.3).train()
    x = torch.ones(400, 500)
    y = dropout(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.005
    scale = 256 / round(0.7 * 256)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], scale))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_dropout_gradient_is_its_mask_and_scale_and_seeded() -> None:
    dropout = Dropout(0.5).train()
    x = torch.randn(64, 33, dtype=torch.bfloat16, requires_grad=True)  # odd size: 8 per draw
    torch.manual_seed(1)
    y = dropout(x)
    y.sum().backward()
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad, ((y != 0) * 2.0).to(torch.bfloat16))
    torch.manual_seed(1)
    assert torch.equal(dropout(x), y)


def test_dropout_is_the_identity_in_eval_mode_and_at_rate_zero() -> None:
    x = torch.randn(4, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
