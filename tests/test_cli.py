"""The command line end to end: the main job, each command, and one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from convlens.cli.main import main
from convlens.runs import Run

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained_run(tmp_path, tiny_idx_dir, capsys):
    code, out, _ = cli(
        capsys,
        "train",
        SMALL,
        "--data",
        f"idx:{tiny_idx_dir}",
        "--epochs",
        "2",
        "--runs",
        tmp_path,
        "--name",
        "r",
        "--quiet",
        "--precision",
        "fp32",
    )
    assert code == 0, out
    return tmp_path / "r"


def test_help_is_fast_and_needs_no_torch() -> None:
    code = "import sys; from convlens.cli.main import main; main(['--help'])"
    result = subprocess.run(
        [sys.executable, "-c", code + "\nassert 'torch' not in sys.modules, 'torch imported'"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "summary" in result.stdout and "compare" in result.stdout


def test_summary_prints_the_keras_table(capsys) -> None:
    code, out, _ = cli(capsys, "summary", "cnn")
    assert code == 0
    assert "(None, 26, 26, 64)" in out and "(None, 5, 5, 64)" in out and "(None, 1600)" in out
    assert "Total params: 243,786" in out
    _, out, _ = cli(capsys, "summary", "dnn", "--explain")
    assert "Total params: 101,770" in out and "why:" in out


def test_summary_json(capsys) -> None:
    _, out, _ = cli(capsys, "summary", "cnn", "--json")
    data = json.loads(out)
    assert data["total_params"] == 243_786
    assert data["layers"][0]["output_shape"] == [64, 26, 26]


def test_train_evaluate_predict(trained_run, capsys, tmp_path) -> None:
    code, out, _ = cli(capsys, "evaluate", trained_run, "--json")
    assert code == 0
    metrics = json.loads(out)
    assert metrics["test_count"] == 60 and len(metrics["confusion"]) == 3

    # A photo of a dark box on a white background, 100x80 pixels: prepared like the data
    # (inverted, resized keeping its aspect), the network sees a bright box on black.
    photo = np.full((80, 100), 255, np.uint8)
    photo[20:60, 30:70] = 10
    Image.fromarray(photo).save(tmp_path / "box.png")
    code, out, _ = cli(capsys, "predict", trained_run, tmp_path / "box.png", "--json")
    assert code == 0
    top = json.loads(out)[0]["top"]
    assert len(top) == 3 and abs(sum(p for _, p in top) - 1) < 1e-4
    code, out, _ = cli(capsys, "predict", trained_run, tmp_path / "box.png", "--top", "2")
    assert out.startswith(str(tmp_path / "box.png")) and out.count("%") == 2


@pytest.mark.parametrize(
    ("views", "said"),
    [
        (["--tta-flip"], "averaged over each image and its mirror"),
        (["--tta-flip", "--tta-shift"], "averaged over each image and its mirror and shifted"),
    ],
)
def test_evaluate_judges_a_run_with_its_own_flip_averaging(
    tmp_path, tiny_idx_dir, capsys, views, said
) -> None:
    """A run trained with --tta-flip (and --tta-shift) reports test figures averaged over
    those views (its last epoch's ``tta_`` figures, metrics.json); evaluate, on the same
    data and the same (last) weights, must report the same."""
    code, _, err = cli(
        capsys, "train", SMALL, "--data", f"idx:{tiny_idx_dir}", "--epochs", "1",
        "--augment", *views, "--runs", tmp_path, "--name", "flip", "--quiet",
        "--precision", "fp32",
    )  # fmt: skip
    assert code == 0, err
    run = tmp_path / "flip"
    metrics = json.loads((run / "metrics.json").read_text())
    last_epoch = Run(run).history()[-1]

    code, out, _ = cli(capsys, "evaluate", run, "--json")
    assert code == 0
    evaluated = json.loads(out)
    assert evaluated["tta_flip"] is True
    assert evaluated["tta_shift"] is ("--tta-shift" in views)
    assert evaluated["test_accuracy"] == metrics["test_accuracy"]
    assert evaluated["test_accuracy"] == pytest.approx(last_epoch["tta_test_accuracy"])
    assert evaluated["test_loss"] == pytest.approx(last_epoch["tta_test_loss"], abs=1e-6)
    assert evaluated["test_loss"] == pytest.approx(metrics["test_loss"], abs=1e-6)
    assert evaluated["confusion"] == metrics["confusion"]

    # --no-tta-flip judges the network alone: another loss (the accuracy may tie)
    code, out, _ = cli(capsys, "evaluate", run, "--json", "--no-tta-flip")
    plain = json.loads(out)
    assert code == 0 and plain["tta_flip"] is False and plain["tta_shift"] is False
    assert plain["test_loss"] != pytest.approx(metrics["test_loss"], abs=1e-6)
    code, out, _ = cli(capsys, "evaluate", run)
    assert said in out.splitlines()[0]


def test_resume_from_the_cli(trained_run, capsys, tiny_idx_dir) -> None:
    code, out, err = cli(capsys, "train", "--resume", trained_run, "--epochs", "3", "--quiet")
    assert code == 0, err
    assert "3 epochs" in out
    state = json.loads((trained_run / "state.json").read_text())
    assert state == {**state, "status": "complete", "epochs_done": 3}


def test_resume_refuses_to_change_the_recipe_and_leaves_the_run_alone(
    trained_run, capsys, tiny_idx_dir
) -> None:
    config = (trained_run / "config.json").read_text()
    code, _, err = cli(capsys, "train", "--resume", trained_run, "--epochs", "3", "--lr", "0.1")
    assert code == 2
    assert err.count("\n") == 1 and "--resume cannot take --lr:" in err
    assert "only --epochs, --data-dir, --threads and --device may change" in err
    assert (trained_run / "config.json").read_text() == config
    assert json.loads((trained_run / "state.json").read_text())["epochs_done"] == 2

    # Where it runs may change; the recorded recipe changes only in its epochs.
    code, _, err = cli(capsys, "train", "--resume", trained_run, "--epochs", "3",
                       "--data-dir", tiny_idx_dir, "--threads", "1", "--quiet")  # fmt: skip
    assert code == 0, err
    before, after = (
        json.loads(config)["train"],
        json.loads((trained_run / "config.json").read_text())["train"],
    )
    assert after == {**before, "epochs": 3}
    assert json.loads((trained_run / "env.json").read_text())["threads"] == 1


@pytest.mark.parametrize(
    "options",
    [
        ["--batch-size", "8", "--no-augment", "--tta-flip"],
        ["--data", "mnist", "--image-size", "32x32", "--channels", "3"],
        ["--seed", "1", "--precision", "fp32", "--no-download"],
    ],
)
def test_resume_names_every_option_it_refuses(capsys, tmp_path, options) -> None:
    named = ", ".join(o for o in options if o.startswith("--"))  # as typed, in this order
    code, _, err = cli(capsys, "train", "--resume", "somerun", "--runs", tmp_path, *options)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"--resume cannot take {named}: " in lines[0]


def test_compare_writes_the_table_and_figure(tmp_path, tiny_idx_dir, capsys) -> None:
    code, out, err = cli(
        capsys,
        "compare",
        "flatten, dense(3, softmax)",
        SMALL,
        "--data",
        f"idx:{tiny_idx_dir}",
        "--epochs",
        "1",
        "--runs",
        tmp_path,
        "--name",
        "c",
        "--quiet",
        "--precision",
        "fp32",
    )
    assert code == 0, err
    assert "Test accuracy" in out and "Parameters" in out
    folder = tmp_path / "c"
    for name in ("compare.csv", "compare.json", "compare.png"):
        assert (folder / name).is_file()
    rows = json.loads((folder / "compare.json").read_text())["rows"]
    assert len(rows) == 2 and all(
        (folder / row["model"] / "metrics.json").is_file() for row in rows
    )


def test_the_main_job_runs_on_the_embedded_sample_offline(tmp_path, capsys) -> None:
    """No data option, no copy anywhere, no network: the sample, and a notice saying so."""
    code, out, err = cli(
        capsys,
        "compare",
        "dnn",
        "cnn",
        "--epochs",
        "1",
        "--train-subset",
        "300",
        "--test-subset",
        "100",
        "--runs",
        tmp_path,
        "--name",
        "c",
        "--quiet",
    )
    assert code == 0, err
    assert "embedded" in err and "sample" in err
    assert "trained on the embedded 10% sample" in out


def train_section(capsys, tmp_path, *args: str) -> dict:
    """Train one quick epoch through the CLI; the "train" section of its config.json."""
    code, _, err = cli(
        capsys, "train", *args, "--epochs", "1", "--runs", tmp_path, "--name", "r", "--quiet"
    )
    assert code == 0, err
    return json.loads((tmp_path / "r" / "config.json").read_text())["train"]


def test_config_json_records_which_presets_recipe_the_run_started_from(
    tmp_path, tiny_idx_dir, capsys
) -> None:
    """config.json's "preset" is the model's preset, its "recipe" the recipe's."""
    from argparse import Namespace

    from convlens.cli.options import recipe_preset

    data = ["--data", f"idx:{tiny_idx_dir}", "--train-subset", "30", "--precision", "fp32"]
    for name, options, recipe in (("fast", ["--preset", "fast"], "fast"), ("lesson", [], None)):
        code, _, err = cli(capsys, "train", SMALL, *options, *data, "--epochs", "1",
                           "--runs", tmp_path, "--name", name, "--quiet")  # fmt: skip
        assert code == 0, err
        config = json.loads((tmp_path / name / "config.json").read_text())
        assert config["preset"] is None and config["recipe"] == recipe

    # MODEL naming a preset brings its recipe along, as `convlens train fast` does
    assert recipe_preset(Namespace(preset=None), " fast ") == "fast"
    assert recipe_preset(Namespace(preset="fast"), "cnn") == "fast"
    assert recipe_preset(Namespace(preset=None), SMALL) is None


def test_the_whole_recipe_as_options_lands_in_config_json(tmp_path, tiny_idx_dir, capsys) -> None:
    train = train_section(
        capsys,
        tmp_path,
        SMALL,
        "--data",
        f"idx:{tiny_idx_dir}",
        "--train-subset",
        "30",
        "--precision",
        "fp32",
        "--optimizer",
        "adamw",
        "--weight-decay",
        "0.01",
        "--schedule",
        "onecycle",
        "--label-smoothing",
        "0.05",
        "--augment",
        "--tta-flip",
        "--channels-last",
        "--ema",
        "0.9",
        "--momentum",
        "0.8",
        "--norm-lr-scale",
        "16",
        "--warmup",
        "0.1",
        "--anneal",
        "linear",
        "--final-lr-scale",
        "0",
    )
    assert train == {
        **train,
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "schedule": "onecycle",
        "label_smoothing": 0.05,
        "augment": True,
        "tta_flip": True,
        "channels_last": True,
        "ema": 0.9,
        "momentum": 0.8,
        "norm_lr_scale": 16.0,
        "warmup": 0.1,
        "anneal": "linear",
        "final_lr_scale": 0.0,
    }


def test_options_not_given_keep_the_lessons_defaults(tmp_path, tiny_idx_dir, capsys) -> None:
    train = train_section(
        capsys, tmp_path, SMALL, "--data", f"idx:{tiny_idx_dir}", "--train-subset", "30"
    )
    assert train == {
        **train,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "schedule": "constant",
        "label_smoothing": 0.0,
        "augment": False,
        "tta_flip": False,
        "channels_last": None,
        "ema": 0.0,
        "momentum": 0.9,
        "norm_lr_scale": 1.0,
        "warmup": 0.25,
        "anneal": "cosine",
        "final_lr_scale": 1e-3,
    }


def test_preset_recipe_with_another_model_and_options_over_it(
    tmp_path, tiny_idx_dir, capsys
) -> None:
    """--preset fast trains MODEL with fast's recipe; the options given still win."""
    from convlens.models.registry import PRESETS

    train = train_section(
        capsys,
        tmp_path,
        SMALL,
        "--preset",
        "fast",
        "--data",
        f"idx:{tiny_idx_dir}",
        "--train-subset",
        "30",
        "--batch-size",
        "16",
        "--no-tta-flip",
    )
    fast = PRESETS["fast"].recipe
    assert fast["tta_flip"] is True and fast["batch_size"] != 16  # so the overrides show
    assert train == {**train, **fast, "epochs": 1, "batch_size": 16, "tta_flip": False}
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["preset"] is None and config["model"]["layers"][0]["conv"]["filters"] == 8


def test_preset_alone_trains_the_presets_model_with_its_recipe(tmp_path, capsys) -> None:
    from convlens.models.registry import PRESETS

    # fast ends in dense(10): the embedded 10-class sample, a sliver of it
    train = train_section(
        capsys,
        tmp_path,
        "--preset",
        "fast",
        "--train-subset",
        "40",
        "--test-subset",
        "20",
        "--no-download",
    )
    assert train == {**train, **PRESETS["fast"].recipe, "epochs": 1}
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["preset"] == "fast" and config["model"]["name"] == "fast"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["summary", "resnet9000"], "unknown model 'resnet9000'"),
        (["summary", "conv(8, 3), dense(10)"], "put 'flatten'"),
        (["train", "cnn", "--epochs", "-1"], "epochs -1 is not valid"),
        (["train", "cnn", "--lr", "nan"], "learning rate nan"),
        (["train", "cnn", "--data", "imagenet"], "imagenet"),
        (["train", "cnn", "--data", "folder:/no/such/folder"], "/no/such/folder"),
        (["train"], "name a model to train"),
        (["evaluate", "/no/such/run"], "no run at /no/such/run"),
        (["train", "cnn", "--data-dir", "/no/such/dir"], "/no/such/dir"),
        (["compare", "dnn", "dnn"], "the same model twice"),
        (["train", "--preset", "nosuch"], "unknown preset 'nosuch'; the presets are: dnn"),
        (["train", "cnn", "--preset", "nosuch"], "unknown preset 'nosuch'"),
        (["sweep", "--preset", "nosuch", "--vary", "epochs=1,2"], "unknown preset 'nosuch'"),
        (["compare", "dnn", "cnn", "--preset", "nosuch"], "unknown preset 'nosuch'"),
        (["train", "--resume", "somerun", "--preset", "fast"], "not both"),
        (["train", "cnn", "--label-smoothing", "1.5"], "label smoothing 1.5 is not valid"),
        (["train", "--preset", "fast", "--no-augment"], "add --augment or drop --tta-flip"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(capsys, args, message, tmp_path) -> None:
    code, _, err = cli(
        capsys,
        *args,
        *(
            ["--runs", tmp_path]
            if args[0] in ("train", "evaluate", "compare") and len(args) > 1
            else []
        ),
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message in lines[0]
    assert "Traceback" not in err


def test_unreadable_image_and_corrupt_idx(trained_run, capsys, tmp_path, tiny_idx_dir) -> None:
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"hello")
    code, _, err = cli(capsys, "predict", trained_run, bad)
    assert code == 2 and "not-an-image.png" in err and len(err.strip().splitlines()) == 1

    broken = tmp_path / "broken-idx"
    broken.mkdir()
    for f in tiny_idx_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    images = broken / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:200])  # truncated
    code, _, err = cli(capsys, "train", SMALL, "--data", f"idx:{broken}", "--runs", tmp_path)
    assert code == 2 and "train-images-idx3-ubyte.gz" in err
    assert len(err.strip().splitlines()) == 1
    assert not any(p.name.startswith("custom") for p in tmp_path.iterdir())  # nothing half-made


def test_runs_lists_runs_with_their_figures(trained_run, capsys) -> None:
    code, out, _ = cli(capsys, "runs", "--runs", trained_run.parent)
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["RUN", "MODEL", "STATUS"]
    assert str(trained_run) in row and "complete" in row and "2/2" in row and "%" in row


def test_evaluate_judges_a_subset_run_on_its_own_test_images(tmp_path, tiny_idx_dir, capsys):
    """A run trained on --train-subset and --test-subset: evaluate draws the same test
    images as training did (the test pick depends on the train pick), unless asked for all."""
    code, _, err = cli(
        capsys, "train", SMALL, "--data", f"idx:{tiny_idx_dir}", "--epochs", "1",
        "--train-subset", "90", "--test-subset", "30", "--runs", tmp_path, "--name", "sub",
        "--quiet", "--precision", "fp32",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "sub" / "metrics.json").read_text())

    code, out, _ = cli(capsys, "evaluate", tmp_path / "sub", "--json")
    evaluated = json.loads(out)
    assert code == 0 and evaluated["test_count"] == metrics["test_count"] == 30
    assert evaluated["confusion"] == metrics["confusion"]

    from convlens.reports.run_report import predictions_on_test_set

    _, labels, probabilities = predictions_on_test_set(Run(tmp_path / "sub"))
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (labels, probabilities.argmax(axis=1)), 1)
    assert confusion.tolist() == metrics["confusion"]  # the report's mistakes agree

    code, out, _ = cli(capsys, "evaluate", tmp_path / "sub", "--json", "--whole-test-set")
    assert code == 0 and json.loads(out)["test_count"] == 60


DATA_HELP = """\
data:
  --data DATASET        fashion-mnist (default), mnist, idx:DIR or folder:DIR
  --data-dir DIR        folder with the dataset's files (else $CONVLENS_DATA,
                        the cache, /usr/share/datasets, a download)
  --image-size HxW      resize images to this size (folder data default:
                        28x28)
  --channels {1,3}      1 for grayscale (default), 3 for colour
  --no-download         never download; use local files or the embedded sample"""


@pytest.mark.parametrize("command", ["train", "compare", "sweep", "serve"])
def test_the_data_options_are_dataconfigs_fields(capsys, monkeypatch, command) -> None:
    """Generated from DataConfig's fields; the help reads as it did when hand-written."""
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    section = out[out.index("\ndata:\n") + 1 :].split("\n\n")[0].rstrip()
    assert " ".join(section.split()) == " ".join(DATA_HELP.split())  # serve aligns narrower
    if command == "train":
        assert section == DATA_HELP


def test_the_data_options_make_the_dataconfig_they_name() -> None:
    from convlens.cli.main import build_parser
    from convlens.cli.options import data_config, recipe_options_given
    from convlens.data.config import DataConfig

    parser = build_parser()
    args = parser.parse_args(["train", "cnn"])
    assert data_config(args) == DataConfig()
    given = ["--data", "mnist", "--data-dir", "d", "--image-size", "32", "--channels", "3"]
    args = parser.parse_args(["train", "cnn", *given, "--no-download"])
    assert data_config(args) == DataConfig("mnist", "d", (32, 32), 3, download=False)
    assert recipe_options_given(args) == ["--data", "--image-size", "--channels", "--no-download"]
