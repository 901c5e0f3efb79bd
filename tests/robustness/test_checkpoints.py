"""Crafted checkpoints and weights files: every tensor and field is checked before use.

A moment of the wrong shape once made fused Adam write out of bounds (exit 139 on
``train --resume``); an epoch of "-5" was accepted. Each mutation below, and the
fuzzer's, ends in one line, or in a checkpoint that loads and trains a step cleanly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from convlens.errors import RunError
from convlens.models.weights import load_weights, read_header
from convlens.recipe import TrainConfig
from convlens.runs import CHECKPOINT, WEIGHTS, Run
from convlens.train.checkpoint import load_checkpoint
from convlens.train.engine import make_optimizer

EXAMPLES = int(os.environ.get("CONVLENS_FUZZ_EXAMPLES", "150"))
SPEC = "conv(4, 3, relu), maxpool(2), batchnorm, flatten, dense(3, softmax)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_idx_dir):
    """A two-epoch run (keep=best, so best/* tensors exist) trained by the real CLI."""
    from convlens.cli.main import main

    runs = tmp_path_factory.mktemp("ckpt-runs")
    args = ["train", SPEC, "--data", f"idx:{tiny_idx_dir}", "--epochs", "2", "--runs",
            str(runs), "--name", "r", "--quiet", "--precision", "fp32",
            "--keep", "best"]  # fmt: skip
    assert main(args) == 0
    return Run(runs / "r")


def fresh(run: Run):
    from convlens.models.network import build_network

    network = build_network(run.spec(), run.input_shape, len(run.class_names))
    config = TrainConfig.from_dict(run.config["train"])
    return network, make_optimizer(network.parameters(), config)


def rewrite(source, target, tensors=None, metadata=None) -> None:
    header = read_header(source)
    save_file(
        tensors if tensors is not None else load_file(source),
        target,
        metadata=metadata if metadata is not None else header.metadata,
    )


def load_into_fresh(run: Run, path) -> None:
    network, optimizer = fresh(run)
    load_checkpoint(path, network, optimizer, steps_per_epoch=10)
    # What resume does next: one step of training must run on sane memory.
    network.train()
    loss = network(torch.rand(4, *run.input_shape)).sum()
    loss.backward()
    optimizer.step()


def test_the_real_checkpoint_loads(trained) -> None:
    load_into_fresh(trained, trained.file(CHECKPOINT))


def mutated(trained, tmp_path, tensors=None, metadata=None):
    path = tmp_path / "checkpoint.safetensors"
    rewrite(trained.file(CHECKPOINT), path, tensors, metadata)
    return path


TENSOR_EDITS = {
    "moment of another shape": lambda t: t.update({"optim/0/exp_avg": torch.zeros(7, 7)}),
    "moment of another dtype": lambda t: t.update(
        {"optim/1/exp_avg_sq": t["optim/1/exp_avg_sq"].double()}
    ),
    "step as a vector": lambda t: t.update({"optim/0/step": torch.ones(3)}),
    "a moment missing": lambda t: t.pop("optim/2/exp_avg"),
    "state for a parameter that does not exist": lambda t: t.update(
        {"optim/99/exp_avg": torch.zeros(1)}
    ),
    "an extra tensor": lambda t: t.update({"model/extra": torch.zeros(2)}),
    "a weight of another shape": lambda t: t.update(
        {"model/blocks.dense.0.weight": torch.zeros(3, 5)}
    ),
    "best weights of another shape": lambda t: t.update(
        {"best/blocks.dense.0.bias": torch.zeros(4)}
    ),
    "NaN weights": lambda t: t.update(
        {"model/blocks.dense.0.bias": torch.full((3,), float("nan"))}
    ),
    "steps that disagree": lambda t: t.update({"optim/0/step": torch.tensor(1.0)}),
    "a huge step count": lambda t: t.update(
        {k: torch.tensor(1e12) for k in list(t) if k.endswith("/step")}
    ),
}


@pytest.mark.parametrize("edit", sorted(TENSOR_EDITS))
def test_crafted_tensors_are_one_line(trained, tmp_path, edit) -> None:
    tensors = load_file(trained.file(CHECKPOINT))
    TENSOR_EDITS[edit](tensors)
    path = mutated(trained, tmp_path, tensors=tensors)
    with pytest.raises(RunError) as err:
        load_into_fresh(trained, path)
    assert "\n" not in str(err.value)


def _history(rows):
    return json.dumps(rows)


METADATA_EDITS = {
    "epoch -5": {"epoch": "-5"},
    "epoch 1e9": {"epoch": "1e9"},
    "epoch in other digits": {"epoch": "\u0662"},
    "epoch beyond the history": {"epoch": "7"},
    "history not a list": {"history": '{"a": 1}'},
    "history of text": {"history": _history([{"epoch": 1, "train_loss": "x"}] * 2)},
    "history out of order": {"history": _history([{"epoch": 2}, {"epoch": 1}])},
    "history not JSON": {"history": "[[[["},
    "best epoch 7": {"best_epoch": "7"},
    "best epoch text": {"best_epoch": '"2"'},
    "no best epoch but best weights": {"best_epoch": "null"},
    "param groups of another optimizer": {
        "param_groups": json.dumps([{"lr": 0.1, "momentum": 0.9, "params": [0, 1, 2, 3, 4, 5]}])
    },
    "param groups with an infinite lr": {"param_groups": "INFINITE"},
    "param groups naming other parameters": {"param_groups": "SHIFTED"},
    "another format": {"format": "convlens-weights-1"},
}


@pytest.mark.parametrize("edit", sorted(METADATA_EDITS))
def test_crafted_fields_are_one_line(trained, tmp_path, edit) -> None:
    metadata = dict(read_header(trained.file(CHECKPOINT)).metadata)
    change = dict(METADATA_EDITS[edit])
    if change.get("param_groups") in ("INFINITE", "SHIFTED"):
        groups = json.loads(metadata["param_groups"])
        if change["param_groups"] == "INFINITE":
            groups[0]["lr"] = 1e999
        else:
            groups[0]["params"] = [p + 1 for p in groups[0]["params"]]
        change["param_groups"] = json.dumps(groups)
    metadata.update(change)
    path = mutated(trained, tmp_path, metadata=metadata)
    with pytest.raises(RunError) as err:
        load_into_fresh(trained, path)
    assert "\n" not in str(err.value)


def test_a_crafted_moment_through_train_resume_is_exit_2_not_a_segfault(trained, tmp_path):
    import shutil

    folder = tmp_path / "r"
    shutil.copytree(trained.path, folder)
    (folder / "state.json").write_text(json.dumps({"status": "interrupted", "epochs_done": 2}))
    tensors = load_file(folder / CHECKPOINT)
    tensors["optim/0/exp_avg"] = torch.zeros(64, 64)
    rewrite(trained.file(CHECKPOINT), folder / CHECKPOINT, tensors=tensors)
    result = subprocess.run(
        [sys.executable, "-m", "convlens", "train", "--resume", str(folder), "--epochs", "3",
         "--quiet", "--threads", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "damaged" in result.stderr or "do not fit" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_weights_file_with_an_extra_key_is_refused_from_its_header(trained, tmp_path) -> None:
    """The data of a file with a foreign tensor is never read: a 400 MB extra tensor
    costs its header."""
    path = tmp_path / "model.safetensors"
    tensors = load_file(trained.file(WEIGHTS))
    tensors["extra"] = torch.zeros(100_000_000)  # 400 MB of data behind a small header
    save_file(tensors, path)
    del tensors
    network, _ = fresh(trained)
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RunError, match="unexpected extra"):
        load_weights(network, path)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 100_000  # peak RSS grew by less than 100 MB


KEYS = st.sampled_from(
    ["optim/0/exp_avg", "optim/0/step", "optim/3/exp_avg_sq", "model/blocks.conv2d.0.weight",
     "best/blocks.dense.0.weight", "model/blocks.batch_normalization.0.num_batches_tracked",
     "optim/5/exp_avg", "model/new"]
)  # fmt: skip
SHAPES = st.lists(st.integers(0, 9), max_size=4).map(tuple)
DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8])
FIELD_TEXT = st.one_of(
    st.sampled_from(["-5", "0", "1", "2", "3", "1e9", "", "null", "true", "[]", "{}", '"2"',
                     "\u0662", "NaN", "99999999999"]),
    st.text(max_size=12),
)  # fmt: skip


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    edits=st.lists(st.tuples(KEYS, SHAPES, DTYPES, st.booleans()), max_size=3),
    fields=st.dictionaries(
        st.sampled_from(["epoch", "best_epoch", "history", "param_groups"]), FIELD_TEXT, max_size=2
    ),
)
def test_fuzzed_checkpoints_end_cleanly(trained, tmp_path_factory, edits, fields) -> None:
    tensors = load_file(trained.file(CHECKPOINT))
    for key, shape, dtype, drop in edits:
        if drop:
            tensors.pop(key, None)
        else:
            tensors[key] = torch.zeros(shape, dtype=dtype)
    metadata = {**read_header(trained.file(CHECKPOINT)).metadata, **fields}
    path = tmp_path_factory.mktemp("fuzz") / "checkpoint.safetensors"
    rewrite(trained.file(CHECKPOINT), path, tensors=tensors, metadata=metadata)
    try:
        load_into_fresh(trained, path)
    except RunError as err:
        assert "\n" not in str(err) and str(err)
