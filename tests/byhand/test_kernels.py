"""The kernel library and the kernel parser: names, typed numbers, and every way to get it wrong."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.byhand import ALIASES, KERNELS, KernelError, get_kernel, kernel_names, parse_kernel
from convlens.errors import ConvlensError

LAPLACIAN = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]


@pytest.mark.parametrize("name", list(KERNELS))
def test_every_library_kernel_is_odd_square_read_only_and_described(name):
    kernel = KERNELS[name]
    assert kernel.name == name
    k = kernel.values
    assert k.dtype == np.float64 and k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2
    assert np.isfinite(k).all()
    assert not k.flags.writeable
    assert kernel.description and "\n" not in kernel.description
    assert parse_kernel(name) is kernel


def test_the_lesson_filters():
    np.testing.assert_array_equal(
        get_kernel("vertical").values, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    )
    np.testing.assert_array_equal(
        get_kernel("horizontal").values, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    )
    np.testing.assert_array_equal(get_kernel("edges").values, LAPLACIAN)
    np.testing.assert_array_equal(get_kernel("laplacian").values, LAPLACIAN)
    np.testing.assert_array_equal(get_kernel("horizontal").values, get_kernel("vertical").values.T)


def test_blurs_are_normalised():
    assert get_kernel("box-blur").values.sum() == pytest.approx(1.0)
    assert get_kernel("gaussian-blur").values.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(("alias", "name"), list(ALIASES.items()))
def test_aliases(alias, name):
    assert get_kernel(alias) is KERNELS[name]


def test_names_are_forgiving_about_case_spaces_and_underscores():
    assert parse_kernel("  Vertical ") is KERNELS["vertical"]
    assert parse_kernel("BOX_BLUR") is KERNELS["box-blur"]
    assert set(kernel_names()) == set(KERNELS) | set(ALIASES)


@pytest.mark.parametrize(
    "text",
    [
        "[[0,1,0],[1,-4,1],[0,1,0]]",
        " [ [0, 1, 0], [1, -4, 1], [0, 1, 0] ] ",
        "[[0 1 0] [1 -4 1] [0 1 0]]",
        "0 1 0; 1 -4 1; 0 1 0",
        "0,1,0;1,-4,1;0,1,0;",
        "0 1 0\n1 -4 1\n0 1 0\n",
        "[0 1 0; 1 -4 1; 0 1 0]",
        "0 1/1 0; 2/2 -8/2 1.0; 0 +1 0e0",
    ],
)
def test_parse_typed_laplacian(text):
    kernel = parse_kernel(text)
    assert kernel.name == "laplacian"  # typed numbers equal to a library kernel get its name
    np.testing.assert_array_equal(kernel.values, LAPLACIAN)
    assert not kernel.values.flags.writeable


def test_parse_fractions_decimals_and_bigger_sizes():
    np.testing.assert_allclose(parse_kernel("1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9").values, 1 / 9)
    np.testing.assert_array_equal(
        parse_kernel("-.5 0 .5; -1 0 1; -0.5 0 5e-1").values[0], [-0.5, 0, 0.5]
    )
    five = parse_kernel("; ".join(" ".join(["1"] * 5) for _ in range(5)))
    assert five.size == 5
    assert parse_kernel("[[2]]").values.shape == (1, 1)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 3).flatmap(
        lambda half: st.lists(
            st.lists(st.integers(-99, 99), min_size=2 * half + 1, max_size=2 * half + 1),
            min_size=2 * half + 1,
            max_size=2 * half + 1,
        )
    )
)
def test_parse_round_trips_both_text_forms(grid):
    nested = "[" + ",".join("[" + ",".join(map(str, row)) + "]" for row in grid) + "]"
    rows = "; ".join(" ".join(map(str, row)) for row in grid)
    np.testing.assert_array_equal(parse_kernel(nested).values, grid)
    np.testing.assert_array_equal(parse_kernel(rows).values, grid)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty kernel"),
        ("   ", "empty kernel"),
        ("sobel", "unknown kernel 'sobel'; choose one of vertical, horizontal"),
        ("[[1,2],[3,4]]", "odd size"),
        ("1 2 3 4; 1 2 3 4; 1 2 3 4; 1 2 3 4", "4x4; use an odd size"),
        ("1 2 3; 4 5; 6 7 8", "row 2 has 2 numbers but row 1 has 3"),
        ("[[1,2,3],[4,5,6]]", "2x3 (rows x columns); it must be square"),
        (
            "0 1 0 1 -4 1 0 1 0",
            "1x9 (rows x columns); it must be square, e.g. 3x3 or 5x5; separate",
        ),
        ("0 1 x; 1 -4 1; 0 1 0", "'x' (row 1, column 3) is not a number"),
        ("[[nan,0,0],[0,0,0],[0,0,0]]", "not a finite number"),
        ("0 0 0; 0 inf 0; 0 0 0", "'inf' (row 2, column 2) is not a finite number"),
        ("1e999 0 0; 0 0 0; 0 0 0", "not a finite number"),
        ("1/0 0 0; 0 0 0; 0 0 0", "divides by zero"),
        ("1/2/3 0 0; 0 0 0; 0 0 0", "not a number"),
        ("[[1,2,3],[4,5,6],[7,8,9]", "unbalanced brackets"),
        ("[[[1]]]", "one level of [row] lists"),
        ("[[1,2,3]] x [[1]]", "one level of [row] lists"),
        ("[]", "has no numbers"),
        (";;", "has no numbers"),
        ("__import__('os').system('true')", "not a number"),
    ],
)
def test_parse_errors_are_one_clear_line(text, fragment):
    with pytest.raises(KernelError) as info:
        parse_kernel(text)
    message = str(info.value)
    assert isinstance(info.value, ConvlensError)
    assert "\n" not in message
    assert fragment in message


def test_library_kernels_cannot_be_edited():
    with pytest.raises(ValueError):
        KERNELS["vertical"].values[0, 0] = 5


def test_typed_numbers_equal_to_a_library_kernel_get_its_name() -> None:
    assert parse_kernel("-1 0 1; -2 0 2; -1 0 1") is KERNELS["vertical"]
    blur = parse_kernel("1/9 1/9 1/9; 1/9 1/9 1/9; 1/9 1/9 1/9")
    assert blur.name == "box-blur" and "average" in blur.description
    assert parse_kernel("[[0,1,0],[1,-4,1],[0,1,0]]").name == "laplacian"
    assert parse_kernel("0 1 0; 1 -3 1; 0 1 0").name == "custom"
