"""conv2d and max_pool2d against torch.nn.functional (the reference answer), plus the
lesson's sizes and the orientation trap (a hand loop that swaps rows and columns)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.byhand import KernelError, clamp_to_uint8, conv2d, get_kernel, max_pool2d
from convlens.errors import ConvlensError, ImageError, OptionError

VERTICAL = get_kernel("vertical").values
HORIZONTAL = get_kernel("horizontal").values


def _torch_conv(x: np.ndarray, w: np.ndarray, stride, padding) -> np.ndarray:
    out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=padding)
    return out.numpy()


# --- reference answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding"),
    [
        ((1, 1, 28, 28), (1, 1, 3, 3), 1, 0),
        ((2, 3, 11, 9), (4, 3, 3, 3), 1, 1),
        ((2, 1, 13, 13), (5, 1, 5, 5), 2, 0),
        ((1, 2, 10, 7), (3, 2, 2, 3), (2, 1), (1, 2)),
        ((3, 4, 8, 8), (2, 4, 3, 1), 3, 2),
        ((1, 1, 9, 12), (2, 1, 3, 3), 1, "same"),
        ((1, 2, 9, 12), (2, 2, 4, 2), 1, "same"),  # even kernel: torch pads one more at the end
        ((2, 2, 6, 6), (1, 2, 3, 3), 1, "valid"),
        ((1, 1, 3, 3), (1, 1, 3, 3), 1, 0),  # kernel exactly the image: one output pixel
    ],
)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    ours = conv2d(x, w, stride=stride, padding=padding)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, _torch_conv(x, w, stride, padding), atol=1e-5, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_conv2d_matches_torch_on_random_shapes(n, c, f, h, w, kh, kw, sh, sw, ph, pw, seed):
    if kh > h + 2 * ph or kw > w + 2 * pw:
        return  # torch refuses these too; the error is tested below
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal((n, c, h, w)), rng.standard_normal((f, c, kh, kw))
    ours = conv2d(x, k, stride=(sh, sw), padding=(ph, pw))
    np.testing.assert_allclose(ours, _torch_conv(x, k, (sh, sw), (ph, pw)), atol=1e-5, rtol=0)


def test_conv2d_float32_input_matches_torch_float32():
    rng = np.random.default_rng(1)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(conv2d(x, w), _torch_conv(x, w, 1, 0), atol=1e-5)


def test_2d_form_is_the_batched_form_with_one_of_each():
    rng = np.random.default_rng(2)
    x, k = rng.integers(0, 256, (20, 17)), rng.integers(-3, 4, (3, 3))
    np.testing.assert_array_equal(conv2d(x, k), conv2d(x[None, None], k[None, None])[0, 0])
    np.testing.assert_array_equal(conv2d(x, k, weight=2.5), 2.5 * conv2d(x, k))


@pytest.mark.parametrize(
    ("shape", "size", "stride"),
    [((1, 1, 26, 26), 2, None), ((2, 3, 27, 27), 2, None), ((1, 2, 11, 11), 2, None),
     ((1, 1, 10, 9), 3, 2), ((2, 1, 8, 8), 3, 1), ((1, 1, 7, 12), (2, 3), (1, 2))],
)  # fmt: skip
def test_max_pool2d_matches_torch(shape, size, stride):
    x = np.random.default_rng(3).standard_normal(shape)
    ours = max_pool2d(x, size, stride)
    theirs = F.max_pool2d(torch.from_numpy(x), size, stride).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 15),
    w=st.integers(1, 15),
    size=st.integers(1, 4),
    stride=st.none() | st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_max_pool2d_matches_torch_on_random_shapes(h, w, size, stride, seed):
    if size > min(h, w):
        return
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w))
    theirs = F.max_pool2d(torch.from_numpy(x), size, stride).numpy()
    np.testing.assert_allclose(max_pool2d(x, size, stride), theirs, atol=1e-5, rtol=0)


def test_max_pool2d_keeps_dtype_and_works_on_2d():
    x = np.arange(36, dtype=np.uint8).reshape(6, 6)
    out = max_pool2d(x)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[7, 9, 11], [19, 21, 23], [31, 33, 35]])


# --- the lesson's sizes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "k", "conv", "pooled"),
    [(28, 3, 26, 13), (13, 3, 11, 5), (28, 5, 24, 12), (512, 3, 510, 255), (29, 3, 27, 13)],
)
def test_sizes_follow_the_lesson(size, k, conv, pooled):
    filtered = conv2d(np.zeros((size, size)), np.ones((k, k)))
    assert filtered.shape == (conv, conv)
    assert max_pool2d(filtered).shape == (pooled, pooled)


def test_pool_of_512_is_256():
    assert max_pool2d(np.zeros((512, 512))).shape == (256, 256)


def test_same_padding_keeps_the_size():
    assert conv2d(np.zeros((28, 28)), VERTICAL, padding="same").shape == (28, 28)


# --- orientation: the trap of swapping rows and columns ---------------------------------


def _lines(direction: str) -> np.ndarray:
    """28x28 black with white lines 1 pixel wide every 6 pixels, vertical or horizontal."""
    image = np.zeros((28, 28))
    if direction == "vertical":
        image[:, 4::6] = 255
    else:
        image[4::6, :] = 255
    return image


def _transposed_conv(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The published bug: a hand loop with x and y swapped, i.e. the filter transposed."""
    h, w = image.shape
    out = np.zeros((h - 2, w - 2))
    for x in range(h - 2):
        for y in range(w - 2):
            out[x, y] = sum(image[x + i, y + j] * kernel[j][i] for i in range(3) for j in range(3))
    return out


def _orientation_ok(conv) -> bool:
    v_on_v = np.abs(conv(_lines("vertical"), VERTICAL)).max()
    h_on_v = np.abs(conv(_lines("vertical"), HORIZONTAL)).max()
    h_on_h = np.abs(conv(_lines("horizontal"), HORIZONTAL)).max()
    v_on_h = np.abs(conv(_lines("horizontal"), VERTICAL)).max()
    return v_on_v > 500 and h_on_h > 500 and h_on_v < 1e-9 and v_on_h < 1e-9


def test_vertical_kernel_sees_vertical_lines_and_horizontal_sees_horizontal():
    assert np.abs(conv2d(_lines("vertical"), VERTICAL)).max() == 4 * 255
    assert np.abs(conv2d(_lines("vertical"), HORIZONTAL)).max() == 0
    assert np.abs(conv2d(_lines("horizontal"), HORIZONTAL)).max() == 4 * 255
    assert np.abs(conv2d(_lines("horizontal"), VERTICAL)).max() == 0
    assert _orientation_ok(conv2d)


def test_orientation_check_catches_a_transposed_loop():
    assert not _orientation_ok(_transposed_conv)


def test_asymmetric_kernel_is_not_transposed_or_flipped():
    # A kernel equal to none of its transposes or flips: any such mix-up changes the answer.
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (9, 11)).astype(np.float64)
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    ours = conv2d(image, kernel)
    np.testing.assert_allclose(ours, _torch_conv(image[None, None], kernel[None, None], 1, 0)[0, 0])
    for wrong in (kernel.T, kernel[::-1, ::-1], kernel[::-1], kernel[:, ::-1]):
        assert not np.allclose(ours, conv2d(image, wrong))
    assert not np.allclose(ours, _transposed_conv(image, kernel))
    # output [r, c] is the window whose top-left is [r, c], rows first
    assert ours[2, 5] == (image[2:5, 5:8] * kernel).sum()


def test_step_edge_sign():
    # dark on the left, bright on the right: Sobel x (vertical) is positive on the edge
    image = np.zeros((5, 6))
    image[:, 3:] = 100
    out = conv2d(image, VERTICAL)
    assert out.max() == 400 and out.min() == 0


def test_integer_images_give_exact_integers():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    out = conv2d(image, get_kernel("laplacian").values)
    assert np.array_equal(out, np.round(out))
    assert out[0, 0] == (image[:3, :3].astype(int) * [[0, 1, 0], [1, -4, 1], [0, 1, 0]]).sum()


# --- clamp ------------------------------------------------------------------------------


def test_clamp_to_uint8():
    out = clamp_to_uint8([-5.0, 0.4, 0.6, 254.5, 300.0, np.nan, np.inf, -np.inf])
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 1, 254, 255, 0, 255, 0])  # 254.5 rounds to even


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: conv2d(np.zeros((2, 2)), np.ones((3, 3))), KernelError, "at most 2x2"),
        (lambda: conv2d(np.zeros((2, 2)), np.ones((5, 5)), padding=1), KernelError, "padded"),
        (lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), stride=0), OptionError, "1 or more"),
        (lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), stride=1.5), OptionError, "whole"),
        (lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), padding=-1), OptionError, "0 or more"),
        (lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), padding="full"), OptionError, "same"),
        (
            lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), stride=2, padding="same"),
            OptionError,
            "stride 1",
        ),
        (lambda: conv2d(np.zeros((3, 5, 5)), np.ones((3, 3))), KernelError, "(H, W)"),
        (lambda: conv2d(np.zeros((1, 2, 5, 5)), np.ones((1, 3, 3, 3))), KernelError, "channels"),
        (lambda: conv2d(np.zeros((0, 5)), np.ones((3, 3))), ImageError, "empty"),
        (lambda: conv2d([["a"]], np.ones((1, 1))), ImageError, "real numbers"),
        (lambda: conv2d([[1, 2], [3]], np.ones((1, 1))), ImageError, "rectangular"),
        (lambda: conv2d(np.zeros((5, 5)), np.ones((3, 3)), weight=np.nan), OptionError, "finite"),
        (lambda: max_pool2d(np.zeros((5, 5)), 0), OptionError, "1 or more"),
        (lambda: max_pool2d(np.zeros((5, 5)), 2, -1), OptionError, "1 or more"),
        (lambda: max_pool2d(np.zeros((1, 1)), 2), OptionError, "at most 1"),
        (lambda: max_pool2d(np.zeros(5), 2), ImageError, "(H, W)"),
    ],
)
def test_errors_are_one_line_and_say_what_is_allowed(call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert isinstance(info.value, ConvlensError)
    assert "\n" not in str(info.value)
    assert fragment in str(info.value)
