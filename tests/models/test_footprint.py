"""The spec's own arithmetic of size: parameters counted from shapes match the built
modules exactly, and a model that cannot exist is refused before anything is allocated."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from convlens.errors import SpecError
from convlens.models import PRESETS
from convlens.models.footprint import MAX_PARAMETERS, check_memory, footprint
from convlens.models.network import build_network, count_params
from convlens.models.spec import parse_spec


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_parameters_from_the_spec_match_the_built_network(name: str) -> None:
    spec = PRESETS[name].spec
    for shape in ((1, 28, 28), (3, 32, 32)):
        assert footprint(spec, shape).parameters == sum(count_params(build_network(spec, shape)))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_footprint_carries_the_summarys_shapes_and_flops(name: str) -> None:
    from convlens.models.summary import summarize

    spec = PRESETS[name].spec
    found = footprint(spec, (1, 28, 28))
    network = build_network(spec, (1, 28, 28))
    summary = summarize(network)
    assert list(found.shapes) == network.shapes and found.flops == summary.flops
    assert found.parameters == summary.total and found.describes(spec, (1, 28, 28))
    handed_on = build_network(spec, (1, 28, 28), footprint=found)  # no second shape walk
    assert handed_on.shapes == network.shapes
    assert not found.describes(spec, (3, 28, 28))  # another input: worked out again
    assert build_network(spec, (3, 28, 28), footprint=found).shapes == spec.shapes((3, 28, 28))
    with pytest.raises(SpecError, match="data has 3 classes"):  # the classifier still checked
        build_network(spec, (1, 28, 28), 3, footprint=found)


def test_the_lessons_figures_without_building() -> None:
    assert footprint(PRESETS["cnn"].spec, (1, 28, 28)).parameters == 243_786  # Keras' count
    assert footprint(PRESETS["dnn"].spec, (1, 28, 28)).parameters == 101_770


LAYER = st.one_of(
    st.builds(
        lambda f, k, s, pad, act, bias: (
            f"conv({f}, {k}, stride={s}, padding={pad}, activation={act}, bias={bias})"
        ),
        st.integers(1, 9), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2),
        st.sampled_from(["relu", "none"]), st.booleans(),
    ),
    st.sampled_from(["maxpool(2)", "avgpool(2)", "batchnorm", "batchnorm(relu)", "dropout(0.2)"]),
    st.builds(lambda f, s: f"residual({f}, stride={s})", st.integers(1, 6), st.integers(1, 2)),
)  # fmt: skip
HEAD = st.sampled_from(
    ["flatten, dense(5)", "gap, dense(5)", "gmp, dense(5)", "flatten, batchnorm, dense(5)"]
)


@settings(max_examples=40, deadline=None)
@given(body=st.lists(LAYER, max_size=4), head=HEAD, side=st.integers(12, 20))
def test_parameters_match_for_random_specs(body: list[str], head: str, side: int) -> None:
    spec = parse_spec(", ".join([*body, head]))
    try:
        spec.shapes((2, side, side))
    except SpecError:
        return  # a spec that does not fit this input: nothing to count
    network = build_network(spec, (2, side, side)).eval()
    assert footprint(spec, (2, side, side)).parameters == sum(count_params(network))
    # Every layer's output, for one image, is what trace() returns for one image.
    with torch.no_grad():
        traced = network.trace(torch.rand(1, 2, side, side))
    assert footprint(spec, (2, side, side)).outputs_per_image == sum(
        t[0].numel() for t in traced.values()
    )


@pytest.mark.parametrize(
    "text",
    [
        "flatten, dense(1000000000000), dense(10)",
        "conv(10000000, 3), flatten, dense(10)",
        "conv(8, 3, padding=1000000), flatten, dense(10)",
        "residual(1000000), gap, dense(10)",
        "flatten, dense(3000000), dense(10)",
    ],
)
def test_weights_that_cannot_exist_are_one_line_at_once(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(SpecError, match="parameters") as err:
        build_network(parse_spec(text), (1, 28, 28))
    assert time.perf_counter() - started < 0.5
    assert "\n" not in str(err.value) and f"{MAX_PARAMETERS:,}" in str(err.value)


def test_training_memory_is_judged_against_what_is_free() -> None:
    spec = parse_spec("conv(64, 3, padding=same), flatten, dense(10)")
    found = check_memory(spec, (1, 28, 28), batch_size=32, available=10**12)
    assert found.train_bytes(32) > found.build_bytes()
    with pytest.raises(SpecError, match=r"to train at batch 4096.*free") as err:
        check_memory(spec, (1, 28, 28), batch_size=4096, available=found.train_bytes(32))
    assert "\n" not in str(err.value)


def test_a_huge_input_is_refused_for_training_not_for_the_summary() -> None:
    spec = parse_spec("conv(8, 3), gap, dense(10)")
    check_memory(spec, (1, 100_000, 100_000))  # 90 weights: the summary is fine
    with pytest.raises(SpecError, match="to train"):
        check_memory(spec, (1, 100_000, 100_000), batch_size=1, available=2**34)
