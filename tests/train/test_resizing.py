"""Progressive resizing (``TrainConfig.resize``): the size of each epoch, the models that
can take it, the batches scaled down in the step, a run at two sizes that resumes."""

from __future__ import annotations

import json

import pytest
import torch

from convlens import runs
from convlens.cli.main import main
from convlens.errors import OptionError, SpecError
from convlens.models.registry import resolve_model
from convlens.models.resizing import check_resizable, resized_shape
from convlens.models.spec import parse_spec
from convlens.recipe import TrainConfig
from convlens.runs import Run
from convlens.train.engine import resize_batch, train_epoch
from convlens.train.runtime import Runtime
from convlens.train.session import resume, train
from tests.train.test_session import interrupted_run

GAP_NET = "conv(8, 3, same, relu), maxpool(2), conv(8, 3, same, relu), gap, dense(3, softmax)"
FLAT_NET = "conv(8, 3, relu), maxpool(2), flatten, dense(3, softmax)"


def test_each_epoch_trains_at_its_stages_size_and_ends_at_full_size() -> None:
    half = TrainConfig(epochs=10, resize="20:0.5")
    assert [half.input_size(e) for e in range(1, 11)] == [20] * 5 + [None] * 5
    stages = TrainConfig(epochs=18, resize="16:0.25, 22:0.25")
    assert stages.resize == "16:0.25,22:0.25"  # the one spelling config.json keeps
    assert [stages.input_size(e) for e in range(1, 19)] == [16] * 4 + [22] * 5 + [None] * 9
    assert stages.resize_sizes() == (16, 22)
    # floor(fraction x epochs): one epoch never trains small, the last never does
    assert TrainConfig(epochs=1, resize="20:0.9").input_size(1) is None
    assert TrainConfig(epochs=3, resize="20:0.9").input_size(2) == 20
    assert TrainConfig(epochs=3, resize="20:0.9").input_size(3) is None
    assert TrainConfig().input_size(1) is None and TrainConfig().resize_sizes() == ()


def test_resize_round_trips_and_old_configs_load_without_it() -> None:
    config = TrainConfig(epochs=8, resize="20:0.5")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = config.to_dict()
    del old["resize"]  # a config.json from before the field
    assert TrainConfig.from_dict(old).resize is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20", "resize stage '20' is not valid; use SIZE:FRACTION stages, e.g. 20:0.5"),
        ("20:1", "resize stage '20:1' is not valid"),
        ("2:0.5", "SIZE a whole number of pixels >= 4"),
        ("twenty:0.5", "resize stage 'twenty:0.5'"),
        ("20:nan", "resize stage '20:nan'"),
        ("", "resize '' is not valid"),
        ("16:0.5,22:0.5", "its fractions sum to 1 or more, leaving no epoch at the data's"),
    ],
)
def test_bad_stages_are_one_line(text, message) -> None:
    with pytest.raises(OptionError) as err:
        TrainConfig(resize=text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_gap_head_takes_smaller_images_and_a_flatten_head_is_refused() -> None:
    check_resizable(resolve_model("fast"), (1, 28, 28), [24, 20, 16, 8])
    check_resizable(parse_spec(GAP_NET), (1, 16, 16), [12, 8])
    with pytest.raises(SpecError) as err:
        check_resizable(resolve_model("cnn"), (1, 28, 28), [20])
    assert str(err.value) == (
        "resize 20: model 'cnn' cannot train on 20x20 images: its layer 'flatten' gives 576 "
        "values there against 1600 at 28x28, so the layers after it change with the image "
        "size; end the convolutions with gap or gmp instead of flatten, or drop --resize"
    )
    with pytest.raises(SpecError, match=r"resize 4: model 'fast' cannot take 4x4 images \("):
        check_resizable(resolve_model("fast"), (1, 28, 28), [4])  # its maps would vanish
    with pytest.raises(SpecError, match="trains on smaller images than the data's 28x28"):
        check_resizable(resolve_model("fast"), (1, 28, 28), [28])


def test_resized_shapes_scale_the_longer_side() -> None:
    assert resized_shape((1, 28, 28), 20) == (1, 20, 20)
    assert resized_shape((3, 32, 24), 16) == (3, 16, 12)


def test_batches_are_scaled_down_antialiased_in_their_memory_format() -> None:
    flat = torch.full((2, 1, 28, 28), 0.3)
    assert torch.allclose(resize_batch(flat, 20), torch.full((2, 1, 20, 20), 0.3))
    stripes = torch.zeros(1, 1, 28, 28)
    stripes[..., ::2] = 1.0  # one-pixel stripes: sampled, they would alias to 0s and 1s
    small = resize_batch(stripes, 14)
    assert small.shape == (1, 1, 14, 14)
    assert torch.allclose(small[..., 1:-1, 1:-1], torch.full((12, 12), 0.5))  # averaged
    nhwc = torch.rand(3, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    assert resize_batch(nhwc, 20).is_contiguous(memory_format=torch.channels_last)


def test_train_epoch_feeds_the_network_its_epochs_size() -> None:
    network = parse_spec(GAP_NET)
    from convlens.models.network import build_network

    net = build_network(network, (1, 16, 16), 3)
    seen: list[tuple[int, ...]] = []
    net.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[2:])))
    config = TrainConfig(epochs=4, batch_size=8, augment=True, resize="8:0.25,12:0.25")
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    images = torch.randint(0, 256, (16, 1, 16, 16), dtype=torch.uint8)
    labels = torch.randint(0, 3, (16,))
    runtime = Runtime(torch.device("cpu"), "fp32", False)
    for epoch in (1, 2, 3, 4):
        train_epoch(net, optimizer, images, labels, config, runtime, epoch=epoch)
    assert seen == [(8, 8)] * 2 + [(12, 12)] * 2 + [(16, 16)] * 4


def test_a_run_at_two_sizes_resumes_as_it_would_have_run(
    tiny_dataset, tmp_path, monkeypatch
) -> None:
    config = TrainConfig(precision="fp32", batch_size=16, epochs=4, resize="20:0.5")
    straight = train(
        GAP_NET, config=config, runs_dir=tmp_path, name="straight", dataset=tiny_dataset
    )
    assert json.loads(straight.file(runs.CONFIG).read_text())["train"]["resize"] == "20:0.5"
    cut = interrupted_run(GAP_NET, config, tiny_dataset, tmp_path, at_epoch=2)  # after a small one
    monkeypatch.setattr("convlens.data.config.DataConfig.load", lambda self, **_: tiny_dataset)
    resumed = resume(cut.path)
    assert [row["epoch"] for row in resumed.history()] == [1, 2, 3, 4]
    for a, b in zip(resumed.history(), straight.history(), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"])
    # judged at 28x28: the saved network takes the data's size
    assert resumed.load_network()(torch.zeros(1, 1, 28, 28)).shape == (1, 3)


def test_a_flatten_model_is_refused_before_a_run_folder_exists(tiny_dataset, tmp_path) -> None:
    config = TrainConfig(precision="fp32", epochs=2, resize="20:0.5")
    with pytest.raises(SpecError, match="layer 'flatten' gives 648 values there against 1352"):
        train(FLAT_NET, config=config, runs_dir=tmp_path, name="r", dataset=tiny_dataset)
    assert not (tmp_path / "r").exists()


def test_the_cli_option(tmp_path, tiny_idx_dir, capsys) -> None:
    base = ["train", GAP_NET, "--data", f"idx:{tiny_idx_dir}", "--runs", str(tmp_path)]
    base += ["--epochs", "2", "--quiet", "--precision", "fp32"]
    assert main([*base, "--name", "r", "--resize", "20:0.5"]) == 0
    assert Run(tmp_path / "r").config["train"]["resize"] == "20:0.5"
    capsys.readouterr()
    assert main([*base, "--name", "bad", "--resize", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "resize stage '20' is not valid" in err and len(err.splitlines()) == 1
    flat = ["train", FLAT_NET, *base[2:], "--name", "flat", "--resize", "20:0.5"]
    assert main(flat) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot train on 20x20 images" in err and len(err.splitlines()) == 1
    assert "--resize STAGES" in _help(capsys)


def _help(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return capsys.readouterr().out
