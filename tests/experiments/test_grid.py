"""The sweep grid as spec edits; the Pareto front and sweet spot; the overfitting verdict."""

from __future__ import annotations

import pytest

from convlens.data.config import DataConfig
from convlens.errors import OptionError
from convlens.experiments.grid import expand, parse_vary
from convlens.experiments.overfit import overfitting
from convlens.experiments.pareto import pareto_front, sweet_spot
from convlens.models.layers import Conv, Dense, MaxPool
from convlens.models.registry import resolve_model
from convlens.recipe import TrainConfig

MNIST = (1, 28, 28)


def grid(model: str, *vary: str, config: TrainConfig | None = None):
    return expand(resolve_model(model), config or TrainConfig(), parse_vary(vary), MNIST, 10)


def test_axes_expand_as_a_product_with_readable_stable_names() -> None:
    points = grid("cnn", "filters=16,32", "epochs=5,20")
    assert [p.name for p in points] == [
        "filters=16,epochs=5",
        "filters=16,epochs=20",
        "filters=32,epochs=5",
        "filters=32,epochs=20",
    ]
    assert points[0].slug == "filters-16_epochs-5"
    data = DataConfig()
    keys = [p.key(data) for p in points]
    assert len(set(keys)) == 4 and all(len(k) == 8 for k in keys)
    again = grid("cnn", "filters=16,32", "epochs=5,20")
    assert [p.key(data) for p in again] == keys  # stable across calls
    assert points[0].folder(data, 1) == f"filters-16_epochs-5-{keys[0]}-r1"
    # the thread count says how a trial runs, not what it trains
    threaded = grid("cnn", "filters=16,32", "epochs=5,20", config=TrainConfig(threads=3))
    assert [p.key(data) for p in threaded] == keys
    assert grid("cnn", "filters=16")[0].key(DataConfig(data_dir="/x")) != points[0].key(data)


def test_filters_edits_every_conv_and_keeps_the_rest() -> None:
    (point,) = grid("cnn", "filters=32")
    convs = [layer for layer in point.spec.layers if isinstance(layer, Conv)]
    assert [c.filters for c in convs] == [32, 32]
    assert point.spec.name == "cnn[filters=32]"
    assert point.error is None
    # the lesson's own setting leaves the preset itself, name and all
    (same,) = grid("cnn", "filters=64")
    assert same.spec == resolve_model("cnn")


def test_filters_changes_parameters_as_keras_counts_them() -> None:
    from convlens.models.network import build_network
    from convlens.models.summary import summarize

    (point,) = grid("cnn", "filters=32")
    # 320 + 9,248 + (5*5*32*128 + 128) + 1,290
    assert summarize(build_network(point.spec, MNIST, 10)).total == 113_386


def test_convs_removes_or_repeats_blocks_and_flags_what_cannot_fit() -> None:
    one, three, four = grid("cnn", "convs=1,3,4")
    assert [type(layer).__name__ for layer in one.spec.layers[:3]] == ["Conv", "MaxPool", "Flatten"]
    kinds = [type(layer) for layer in three.spec.layers]
    assert kinds.count(Conv) == 3 and kinds.count(MaxPool) == 3
    assert three.spec.shapes(MNIST)[5] == (64, 1, 1)  # 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1
    assert four.error is not None and "conv block 4" in four.error and "1x1" in four.error
    assert "fewer convs" in four.error


def test_repeated_blocks_pool_only_while_the_map_is_big_enough() -> None:
    (point,) = grid("cnn-bn", "convs=5")  # 'same' padding: 28, 14, 7, 3, 1, then no pool
    assert point.error is None
    kinds = [type(layer) for layer in point.spec.layers]
    assert kinds.count(Conv) == 5 and kinds.count(MaxPool) == 4
    assert point.spec.shapes(MNIST)[-5] == (64, 1, 1)


def test_dense_edits_hidden_layers_only() -> None:
    (point,) = grid("cnn", "dense=64")
    units = [layer.units for layer in point.spec.layers if isinstance(layer, Dense)]
    assert units == [64, 10]


def test_training_axes_edit_the_recipe() -> None:
    points = grid("cnn", "lr=1e-3,0.003", "batch_size=64")
    assert [p.config.lr for p in points] == [0.001, 0.003]
    assert all(p.config.batch_size == 64 for p in points)
    assert points[1].name == "lr=0.003,batch_size=64"
    assert points[0].spec == resolve_model("cnn")
    same = expand(resolve_model("cnn"), TrainConfig(), {"lr": "1e-3,0.003", "batch_size": 64},
                  MNIST, 10)  # fmt: skip
    assert [p.name for p in same] == [p.name for p in points]


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        (["kernels=3"], "the sweep axes are: filters, convs, dense, epochs, lr, batch_size"),
        (["filters"], "needs AXIS=V1,V2"),
        (["filters=16,x"], "'x' is not a whole number"),
        (["filters=16,16"], "lists a value twice"),
        (["epochs=0"], "must be above 0"),
        (["epochs=2.5"], "not a whole number"),
        (["filters=8", "filters=16"], "given twice"),
    ],
)
def test_bad_axes_and_values_are_one_line_errors(vary: list[str], message: str) -> None:
    with pytest.raises(OptionError, match=message.replace("(", r"\(")) as info:
        parse_vary(vary)
    assert "\n" not in str(info.value)


def test_axes_that_do_not_apply_to_the_model_fail_before_training() -> None:
    with pytest.raises(OptionError, match="has no conv layer"):
        grid("dnn", "filters=16")
    with pytest.raises(OptionError, match="has no hidden dense layer"):
        expand(resolve_model("conv(8, 3), flatten, dense(10)"), TrainConfig(),
               {"dense": [8]}, MNIST, 10)  # fmt: skip
    with pytest.raises(OptionError, match="lr=20"):
        grid("cnn", "lr=20")


def row(name: str, seconds: float, accuracy: float) -> dict:
    return {"config": name, "train_seconds_mean": seconds, "test_accuracy_mean": accuracy}


def test_pareto_front_and_sweet_spot_reference_answers() -> None:
    rows = [
        row("a", 10, 0.900),
        row("b", 20, 0.912),
        row("c", 40, 0.914),  # best, but only 0.2 points above b
        row("d", 30, 0.905),  # dominated by b: slower and less accurate
        row("e", 50, 0.914),  # dominated by c: as accurate, slower
    ]
    assert [rows[i]["config"] for i in pareto_front(rows)] == ["a", "b", "c"]
    assert rows[sweet_spot(rows, margin=0.003)]["config"] == "b"
    assert rows[sweet_spot(rows, margin=0.0)]["config"] == "c"
    assert rows[sweet_spot(rows, margin=0.02)]["config"] == "a"
    assert sweet_spot([]) is None


def history(tests: list[float], trains: list[float]) -> list[dict]:
    return [
        {"epoch": i + 1, "test_accuracy": t, "train_accuracy": r}
        for i, (t, r) in enumerate(zip(tests, trains, strict=True))
    ]


def test_overfitting_verdicts() -> None:
    falls = overfitting(history([0.88, 0.90, 0.91, 0.90, 0.895], [0.88, 0.92, 0.94, 0.96, 0.98]))
    assert falls.verdict == "overfitting" and falls.fell_after_best
    assert falls.best_epoch == 3 and falls.final_gap == pytest.approx(0.085)
    assert "epoch 3" in falls.text and "--keep best" in falls.text
    stalls = overfitting(history([0.88, 0.90, 0.901, 0.90], [0.90, 0.93, 0.95, 0.97]))
    assert stalls.verdict == "stalled" and not stalls.fell_after_best
    rising = overfitting(history([0.85, 0.87, 0.88], [0.86, 0.88, 0.89]))
    assert rising.verdict == "still improving"
    assert overfitting(history([0.8], [0.7])).verdict == "too short"
    flat = overfitting(history([0.88, 0.90, 0.899], [0.88, 0.90, 0.905]))
    assert flat.verdict == "no sign" and flat.loss_low_epoch is None
    rows = history([0.86, 0.87, 0.865], [0.9, 0.95, 0.97])
    for row, loss in zip(rows, [0.40, 0.38, 0.45], strict=True):
        row["test_loss"] = loss
    confident = overfitting(rows)
    assert confident.loss_low_epoch == 2 and "Test loss has risen since epoch 2" in confident.text
