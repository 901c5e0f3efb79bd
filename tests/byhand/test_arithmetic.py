"""The worked arithmetic of one output pixel: its sum IS the convolution's output, exactly."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.byhand import KERNELS, clamp_to_uint8, conv2d, explain_pixel, get_kernel
from convlens.byhand.arithmetic import format_number
from convlens.errors import ConvlensError, OptionError

# The lesson's example neighbourhood: 192 in the middle, 0 to its upper left, 64 above it.
WINDOW = np.array([[0, 64, 128], [48, 192, 144], [142, 226, 168]], dtype=np.uint8)


def _image_with_window(row: int, col: int) -> np.ndarray:
    image = np.random.default_rng(0).integers(0, 256, (8, 9), dtype=np.uint8)
    image[row : row + 3, col : col + 3] = WINDOW
    return image


@pytest.mark.parametrize("name", list(KERNELS))
def test_sum_equals_conv2d_exactly_for_every_pixel(name):
    image = np.random.default_rng(1).integers(0, 256, (12, 10), dtype=np.uint8)
    kernel = get_kernel(name).values
    for weight in (1.0, 0.37):
        filtered = conv2d(image, kernel, weight=weight)
        for row in range(filtered.shape[0]):
            for col in range(filtered.shape[1]):
                worked = explain_pixel(image, kernel, row, col, weight=weight)
                assert worked.weighted == filtered[row, col]  # bit for bit, no tolerance
                if weight == 1.0:
                    assert worked.total == filtered[row, col]


@settings(max_examples=40, deadline=None)
@given(
    k=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
    weight=st.floats(-10, 10, allow_nan=False),
)
def test_sum_equals_conv2d_exactly_on_random_floats(k, seed, weight):
    rng = np.random.default_rng(seed)
    image, kernel = rng.standard_normal((7, 8)) * 100, rng.standard_normal((k, k))
    filtered = conv2d(image, kernel, weight=weight)
    row, col = rng.integers(0, filtered.shape[0]), rng.integers(0, filtered.shape[1])
    worked = explain_pixel(image, kernel, int(row), int(col), weight=weight)
    assert worked.weighted == filtered[row, col]
    assert worked.clamped == clamp_to_uint8(filtered[row, col])


def test_fields_hold_the_window_weights_and_products():
    image = _image_with_window(2, 3)
    kernel = get_kernel("laplacian").values
    worked = explain_pixel(image, kernel, 2, 3)
    np.testing.assert_array_equal(worked.neighbourhood, WINDOW)
    np.testing.assert_array_equal(worked.weights, kernel)
    np.testing.assert_array_equal(worked.products, WINDOW * kernel)
    assert worked.centre == (3, 4)
    assert worked.total == 64 + 48 - 4 * 192 + 144 + 226  # -286
    assert worked.weighted == -286
    assert worked.clamped == 0


def test_format_reads_like_the_lesson():
    kernel = np.array([[-1, 0, 1], [-2, -1, 2], [-1, 0, 1]])  # -1 under the 192
    text = explain_pixel(_image_with_window(0, 0), kernel, 0, 0, weight=2).format()
    assert "Output pixel [0, 0] of a 3x3 convolution" in text
    assert "centred on input pixel [1, 1]" in text
    assert re.search(r"\b0 x -1 =\s+0\b", text)  # upper-left neighbour, weight -1
    assert re.search(r"\b64 x\s+0 =\s+0\b", text)  # upper neighbour, weight 0
    assert re.search(r"\b192 x -1 = -192\b", text)
    total = -0 + 128 - 96 - 192 + 288 - 142 + 168
    assert re.search(rf"sum of the 9 products\s+= {total}$", text, re.M)
    assert re.search(rf"x weight 2\s+= {2 * total}$", text, re.M)
    assert re.search(rf"clamped to 0\.\.255\s+= {min(2 * total, 255)}\b", text)
    for title in ("neighbourhood", "kernel", "products"):
        assert title in text


def test_format_shows_fractions_as_fractions():
    text = explain_pixel(np.full((3, 3), 90), get_kernel("box-blur").values, 0, 0).format()
    assert "90 x 1/9 = 10" in text
    assert re.search(r"sum of the 9 products\s+= 90$", text, re.M)


def test_5x5_window_and_centre():
    image = np.arange(100.0).reshape(10, 10)
    worked = explain_pixel(image, np.ones((5, 5)), 1, 2)
    assert worked.centre == (3, 4)
    assert worked.total == image[1:6, 2:7].sum()
    assert "sum of the 25 products" in worked.format()


@pytest.mark.parametrize(
    ("row", "col", "fragment"),
    [
        (26, 0, "outside the 26x26 output of a 3x3 kernel on a 28x28 image; row goes from 0 to 25"),
        (0, 26, "column from 0 to 25"),
        (-1, 0, "outside"),
        ("a", 0, "whole numbers"),
        (1.5, 0, "whole numbers"),
    ],
)
def test_out_of_range_pixels_are_refused_with_the_range(row, col, fragment):
    with pytest.raises(OptionError) as info:
        explain_pixel(np.zeros((28, 28)), np.ones((3, 3)), row, col)
    assert "\n" not in str(info.value) and fragment in str(info.value)


@pytest.mark.parametrize(
    ("image", "kernel"),
    [(np.zeros((2, 5, 5)), np.ones((3, 3))), (np.zeros((5, 5)), np.ones((1, 3, 3))),
     (np.zeros((2, 2)), np.ones((3, 3)))],
)  # fmt: skip
def test_bad_shapes_are_user_errors(image, kernel):
    with pytest.raises(ConvlensError):
        explain_pixel(image, kernel, 0, 0)


@pytest.mark.parametrize(
    ("value", "text", "fraction"),
    [(3.0, "3", False), (-0.0, "0", False), (2.5, "2.5", False), (1 / 3, "0.333333", False),
     (1 / 9, "1/9", True), (0.25, "1/4", True), (np.pi, "3.14159", True), (-4, "-4", True)],
)  # fmt: skip
def test_format_number(value, text, fraction):
    assert format_number(value, fraction=fraction) == text


def test_the_pooling_block_of_a_filtered_pixel_and_its_maximum() -> None:
    """A 5x5 filtered image: pixel [1, 2] is in the block rows 0-1, columns 2-3, which
    becomes pooled pixel [0, 1]; row 4 does not fill a 2x2 block and is dropped."""
    from convlens.byhand import max_pool2d
    from convlens.byhand.arithmetic import explain_pool

    filtered = np.arange(25, dtype=np.float64).reshape(5, 5) - 10  # -10 .. 14
    filtered[0, 3] = 300.0
    pool = explain_pool(filtered, 1, 2)
    assert pool.pooled == (0, 1)
    np.testing.assert_array_equal(pool.block, [[-8, 300], [-3, -2]])
    assert pool.maximum == max_pool2d(filtered, 2)[0, 1] == 300
    assert pool.clamped == 255
    text = pool.format()
    assert "block of rows 0-1, columns 2-3" in text and "pooled pixel [0, 1]" in text
    assert "the largest of the 4       = 300   (at [0, 3])" in text
    assert "rounded, clamped to 0..255 = 255" in text
    dropped = explain_pool(filtered, 4, 0)
    assert dropped.block is None and "filtered pixel [4, 0] is dropped" in dropped.format()


def test_the_printout_says_what_the_cell_positions_are() -> None:
    from convlens.byhand import explain_pixel

    image = np.arange(25, dtype=np.float64).reshape(5, 5)
    text = explain_pixel(image, np.ones((3, 3)), 1, 2).format()
    assert (
        "[r,c] is a position inside the 3x3 neighbourhood ([0,0] its top-left, input pixel [1, 2])"
        in text
    )
    assert "rounded, clamped to 0..255" in text
