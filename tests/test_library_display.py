"""The library as a notebook user meets it: results that display themselves, inputs as
users hold them, the sample and smoke mode said out loud (issue 16)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import convlens
from convlens.cli.main import main
from convlens.data import load_dataset
from convlens.data.config import DataConfig
from convlens.errors import OptionError
from convlens.notices import SampleDataWarning, SmokeModeWarning
from convlens.recipe import TrainConfig
from convlens.runs import Run

SMALL = "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tiny_idx_dir, tmp_path_factory) -> Run:
    runs_dir = tmp_path_factory.mktemp("runs")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SampleDataWarning)  # real data: no fallback
        return convlens.train(
            SMALL,
            data=DataConfig(dataset=f"idx:{tiny_idx_dir}"),
            config=TrainConfig(epochs=2, batch_size=16, precision="fp32"),
            runs_dir=runs_dir,
            name="tiny",
        )


def test_a_submodule_never_hides_the_function_of_its_name() -> None:
    import convlens.compare  # the module, imported first
    import convlens.predict

    assert callable(convlens.compare) and callable(convlens.predict)
    assert convlens.compare.__module__ == "convlens.compare"


def test_summary_takes_height_width_channels_and_shows_a_table() -> None:
    summary = convlens.summary("cnn", (28, 28, 1), explain=True)
    text = str(summary)
    assert "Total params: 243,786" in text and "why:" in text
    html = summary._repr_html_()
    assert "<table" in html and "Why" in html and "(None, 26, 26, 64)" in html
    assert convlens.summary("cnn").total == 243_786  # default 28x28 grey
    assert convlens.summary("cnn", (32, 32, 3)).input_shape == (3, 32, 32)
    with pytest.warns(FutureWarning, match=r"write \(H, W, C\) = \(28, 28, 1\)"):
        assert convlens.summary("cnn", (1, 28, 28)).total == 243_786  # old callers
    with pytest.raises(OptionError, match="1 \\(grey\\) or 3 \\(RGB\\)"):
        convlens.summary("cnn", (28, 28, 5))


def test_a_run_shows_its_figures_and_says_its_data(run) -> None:
    assert f"{run.path}: test accuracy" in str(run)
    html = run._repr_html_()
    assert "<table" in html and "data:image/png;base64" in html  # the curves
    assert "test accuracy" in html and "150 train / 60 test images" in html


def test_the_look_inside_functions_take_what_users_hold(run, tiny_dataset) -> None:
    images = tiny_dataset.test_images[:3]  # (3, 1, 28, 28) uint8
    by_index = convlens.predict(run, [0, 1, 2])
    assert by_index.labels[0].startswith("test #0 (")
    for same in (images, images[:, 0], images.astype(np.float32) / 255, torch.from_numpy(images)):
        np.testing.assert_allclose(
            convlens.predict(run, same).probabilities, by_index.probabilities, atol=1e-6
        )
    assert "<table" in by_index._repr_html_() and "%" in str(by_index)

    journey = convlens.journey(run, [0, 1])
    assert journey._repr_png_().startswith(PNG)
    assert "conv2d 26x26x8" in str(journey)
    explained = convlens.explain(run, images[0, 0])  # an (H, W) array
    assert explained._repr_png_().startswith(PNG) and "predicted" in str(explained)
    filters = convlens.filters(run)
    assert filters.weights.shape == (8, 1, 3, 3) and filters._repr_png_().startswith(PNG)
    evaluation = convlens.evaluate(run)
    assert evaluation.accuracy == pytest.approx(run.metrics()["test_accuracy"], abs=1e-6)
    assert "Confusion matrix" in evaluation._repr_html_()

    network = run.load_network()  # trace takes uint8 arrays as well as float tensors
    from_uint8 = network.trace(images)["dense_1"]
    from_float = network.trace(torch.from_numpy(images).float() / 255)["dense_1"]
    torch.testing.assert_close(from_uint8, from_float)


def test_predict_in_a_loop_loads_the_network_once_and_sees_new_weights(
    run, tmp_path, monkeypatch
) -> None:
    """A notebook's loop over images: one network load, not one per call; replacing the
    weights file (as training does, and as a user saving others does) is seen."""
    import shutil

    from convlens.models.weights import save_weights

    folder = tmp_path / "copy"
    shutil.copytree(run.path, folder)
    loads = []
    original = Run.network
    monkeypatch.setattr(Run, "network", lambda self, *a: loads.append(1) or original(self, *a))
    image = np.random.default_rng(3).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    first = [convlens.predict(folder, image).probabilities for _ in range(4)]
    assert len(loads) == 1
    np.testing.assert_allclose(first[0], first[-1], atol=1e-5, rtol=0)  # engines: 1e-8 apart

    network = Run.open(folder).network()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(-1.5)
        expected = network(torch.from_numpy(image).float() / 255).softmax(-1).numpy()
    save_weights(network, folder / "model.safetensors")
    got = convlens.predict(folder, image).probabilities
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert not np.allclose(got, first[0], atol=1e-3)


def test_predict_in_a_loop_sees_a_changed_config_and_answers_as_a_fresh_load(
    run, tmp_path, monkeypatch
) -> None:
    """The kept run is the files' own: a config.json rewritten in place of the old one
    (new class names, the mirror view, a light background) is read again, and every
    call answers exactly what a fresh Run and network would (a Run handle, the folder
    and a name inside the runs folder alike)."""
    import json
    import shutil

    from PIL import Image

    from convlens.predict import predict_arrays

    folder = tmp_path / "runs" / "copy"
    shutil.copytree(run.path, folder)
    monkeypatch.chdir(tmp_path)
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 9:19] = np.random.default_rng(5).integers(100, 256, (16, 10))
    picture = Image.fromarray(image)  # a photo: prepared by the run's recorded background

    def fresh(which) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        opened = Run.open(folder)
        images = convlens.as_images(which, opened.preparation)
        views = opened.run_config.train.tta_options()
        probabilities = predict_arrays(opened.network(), images, **views)
        return probabilities, images, tuple(opened.class_names)

    for ref in (folder, "copy", Run.open(folder), "runs/copy"):
        got = convlens.predict(ref, image)
        expected, _, names = fresh(image)
        np.testing.assert_allclose(got.probabilities, expected, atol=1e-5, rtol=0)
        assert got.class_names == names
    before = convlens.predict("copy", picture)

    config = json.loads((folder / "config.json").read_text())
    config["class_names"] = ["first", "second", "third"]
    config["train"].update(augment=True, tta_flip=True)
    config["dataset"]["preparation"]["background"] = "light"  # the image is inverted now
    (tmp_path / "new.json").write_text(json.dumps(config))
    (tmp_path / "new.json").replace(folder / "config.json")
    got = convlens.predict("copy", picture)
    expected, images, names = fresh(picture)
    assert got.class_names == names == ("first", "second", "third")
    np.testing.assert_allclose(got.probabilities, expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(got.images, images)  # prepared as the new file says
    np.testing.assert_array_equal(got.images, 255 - before.images)  # now inverted
    assert convlens.predict(Run.open(folder), image).class_names == names

    (folder / "model.safetensors").unlink()  # a missing file: the run's own error
    with pytest.raises(convlens.ConvlensError, match=r"model\.safetensors does not exist"):
        convlens.predict("copy", image)


def _eager_answer(folder, image: np.ndarray) -> np.ndarray:
    """What a fresh load of the run folder answers for ``image``: the eager fp32 network."""
    network = Run.open(folder).network()
    with torch.no_grad():
        return network(torch.from_numpy(image).float() / 255).softmax(-1).numpy()


def _flipped_weights(folder) -> bytes:
    """The run's weights file with every float32 weight negated: the same bytes but for
    the sign bits (the same size, another answer)."""
    import json

    data = bytearray((folder / "model.safetensors").read_bytes())
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    for name, entry in header.items():
        if name != "__metadata__" and entry["dtype"] == "F32":
            start, end = (8 + size + offset for offset in entry["data_offsets"])
            values = np.frombuffer(data, np.uint32, (end - start) // 4, start)
            data[start:end] = (values ^ np.uint32(0x8000_0000)).tobytes()
    return bytes(data)


def test_predict_in_a_loop_sees_weights_rewritten_in_place(run, tmp_path) -> None:
    """Weights written into the same file (same inode, same size: only its time moves),
    as a user's own tool may save them, are seen by the next call."""
    import os
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(run.path, folder)
    image = np.random.default_rng(7).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    first = [convlens.predict(folder, image).probabilities for _ in range(3)]
    weights = folder / "model.safetensors"
    before = os.stat(weights)
    data = _flipped_weights(folder)
    with open(weights, "r+b") as file:  # in place: no new inode
        file.write(data)
        file.truncate()
    after = os.stat(weights)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    got = convlens.predict(folder, image).probabilities
    np.testing.assert_allclose(got, _eager_answer(folder, image), atol=1e-5, rtol=0)
    assert not np.allclose(got, first[0], atol=1e-3)


def test_predict_in_a_loop_answers_as_the_run_rewritten_between_two_calls(run, tmp_path) -> None:
    """Another run's config.json and weights copied over a run's own, in place (same
    inodes, same sizes), between two calls: the next call answers what a fresh load of
    the new files answers (its class names, its probabilities), for a path and for a
    Run handle's weights."""
    import json
    import os
    import shutil

    folder, other = tmp_path / "copy", tmp_path / "other"
    shutil.copytree(run.path, folder)
    shutil.copytree(run.path, other)
    config = json.loads((other / "config.json").read_text())
    config["class_names"] = [name.upper()[::-1] for name in config["class_names"]]
    (other / "config.json").write_text(json.dumps(config))
    (other / "model.safetensors").write_bytes(_flipped_weights(other))
    image = np.random.default_rng(17).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    handle = Run.open(folder)
    first = [convlens.predict(ref, image) for ref in (folder, handle, folder, handle)]
    assert all(p.class_names == tuple(run.class_names) for p in first)

    inodes = [os.stat(folder / name).st_ino for name in ("config.json", "model.safetensors")]
    for name in ("config.json", "model.safetensors"):
        shutil.copyfile(other / name, folder / name)  # in place: the same inodes
    assert inodes == [
        os.stat(folder / name).st_ino for name in ("config.json", "model.safetensors")
    ]
    expected = _eager_answer(other, image)
    assert not np.allclose(expected, first[0].probabilities, atol=1e-3)
    got = convlens.predict(folder, image)
    np.testing.assert_allclose(got.probabilities, expected, atol=1e-5, rtol=0)
    assert got.class_names == tuple(config["class_names"])
    by_handle = convlens.predict(handle, image)  # the weights are read again
    np.testing.assert_allclose(by_handle.probabilities, expected, atol=1e-5, rtol=0)


def test_predict_in_a_loop_on_one_run_handle_checks_its_weights_alone(
    run, tmp_path, monkeypatch
) -> None:
    """The same Run object as the last call: one os.stat, of the weights; a path: two,
    config.json's and the weights'. A config.json replaced behind the handle is not read
    for it (a Run reads its config once); Run.open and the path read the new one."""
    import json
    import os
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(run.path, folder)
    image = np.random.default_rng(19).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    handle = Run.open(folder)
    for ref in (handle, folder):
        convlens.predict(ref, image)
        convlens.predict(ref, image)  # kept now
    statted: list[str] = []
    real_stat = os.stat
    monkeypatch.setattr(
        os,
        "stat",
        lambda path, *a, **k: statted.append(os.fspath(path)) or real_stat(path, *a, **k),
    )
    convlens.predict(handle, image)
    convlens.predict(handle, image)
    assert statted == [str(folder / "model.safetensors")] * 2
    statted.clear()
    convlens.predict(folder, image)
    assert sorted(statted) == [str(folder / "config.json"), str(folder / "model.safetensors")]
    monkeypatch.setattr(os, "stat", real_stat)

    config = json.loads((folder / "config.json").read_text())
    config["class_names"] = ["first", "second", "third"]
    (tmp_path / "new.json").write_text(json.dumps(config))
    (tmp_path / "new.json").replace(folder / "config.json")
    assert convlens.predict(handle, image).class_names == tuple(run.class_names)  # as it was
    assert convlens.predict(Run.open(folder), image).class_names == ("first", "second", "third")
    assert convlens.predict(folder, image).class_names == ("first", "second", "third")


def test_predict_in_a_loop_follows_the_folder_a_reference_names_now(
    run, tmp_path, monkeypatch
) -> None:
    """The reference is found again at every call: a run folder replaced by another
    (moved into its place), the same relative name from another working directory,
    and a folder of that name appearing beside the runs folder (Run.open's first
    candidate) each answer as a fresh load of what the reference names now."""
    import shutil

    image = np.random.default_rng(11).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    here, there = tmp_path / "here", tmp_path / "there"
    shutil.copytree(run.path, here / "runs" / "copy")
    shutil.copytree(run.path, there / "copy")
    (there / "copy" / "model.safetensors").write_bytes(_flipped_weights(there / "copy"))
    monkeypatch.chdir(here)
    original = convlens.predict("copy", image).probabilities  # runs/copy
    np.testing.assert_allclose(original, _eager_answer("runs/copy", image), atol=1e-5, rtol=0)

    monkeypatch.chdir(there)  # "copy" is a folder here, with other weights
    flipped = convlens.predict("copy", image).probabilities
    np.testing.assert_allclose(flipped, _eager_answer("copy", image), atol=1e-5, rtol=0)
    assert not np.allclose(flipped, original, atol=1e-3)

    monkeypatch.chdir(here)
    np.testing.assert_allclose(convlens.predict("copy", image).probabilities, original, atol=1e-5)
    shutil.copytree(there / "copy", here / "copy")  # now Run.open("copy") opens this one
    np.testing.assert_allclose(convlens.predict("copy", image).probabilities, flipped, atol=1e-5)

    absolute = here / "runs" / "copy"
    np.testing.assert_allclose(convlens.predict(absolute, image).probabilities, original, atol=1e-5)
    (here / "runs" / "copy").rename(here / "old")
    (here / "copy").rename(absolute)  # another run folder moved into its place
    np.testing.assert_allclose(convlens.predict(absolute, image).probabilities, flipped, atol=1e-5)


def test_predict_in_a_loop_sees_a_run_trained_on(run, tmp_path, tiny_idx_dir) -> None:
    """A run resumed for more epochs in its folder (training replaces its weights and
    state) answers with the new weights at the next call."""
    import shutil

    folder = tmp_path / "runs" / "copy"
    shutil.copytree(run.path, folder)
    image = np.random.default_rng(13).integers(0, 256, (1, 1, 28, 28), dtype=np.uint8)
    before = [convlens.predict(folder, image).probabilities for _ in range(3)]
    convlens.resume(folder, epochs=3, data_dir=None)
    got = convlens.predict(folder, image).probabilities
    np.testing.assert_allclose(got, _eager_answer(folder, image), atol=1e-5, rtol=0)
    assert not np.allclose(got, before[0], atol=1e-6)


def test_compare_prints_its_table_and_shows_it(tiny_idx_dir, tmp_path) -> None:
    table = convlens.compare(
        [SMALL, SMALL.replace("dense(16", "dense(8")],
        data=DataConfig(dataset=f"idx:{tiny_idx_dir}"),
        config=TrainConfig(epochs=1, batch_size=16, precision="fp32", train_subset=90),
        runs_dir=tmp_path,
        name="c",
    )
    assert str(table) == table.format() and "Test accuracy" in str(table)
    assert "trained on a subset of idx:" in str(table)  # a subset says so
    html = table._repr_html_()
    assert "<table" in html and "data:image/png;base64" in html and "subset" in html


def test_the_sample_fallback_is_a_warning_and_every_figure_says_so(tmp_path, capsys) -> None:
    with pytest.warns(SampleDataWarning, match="embedded 10% sample"):
        dataset = load_dataset("fashion-mnist", download=False)
    assert dataset.is_sample
    code = main(
        ["train", SMALL.replace("dense(3", "dense(10"), "--epochs", "1", "--train-subset",
         "200", "--test-subset", "100", "--no-download", "--runs", str(tmp_path), "--name",
         "s", "--quiet", "--precision", "fp32"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "trained on the embedded 10% sample" in out
    assert "embedded 10% sample" in Run(tmp_path / "s")._repr_html_()
    metrics = Run(tmp_path / "s").metrics()  # the figures say where they come from
    assert metrics["data"] == "sample, subset" and "10% sample" in metrics["data_caveat"]
    assert main(["runs", "--runs", str(tmp_path)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert "DATA" in listing[0] and "sample, subset" in listing[1]


def test_smoke_mode_caps_even_explicit_epochs_and_says_so(run, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CONVLENS_SMOKE", "1")
    with pytest.warns(SmokeModeWarning, match="capped to 1 epoch \\(asked 7\\)"):
        smoked = convlens.train(
            SMALL,
            data=DataConfig(**run.config["data"]),
            config=TrainConfig(epochs=7, batch_size=16, precision="fp32"),
            runs_dir=tmp_path,
            name="smoke",
        )
    assert smoked.metrics()["epochs_done"] == 1
    assert smoked.config["dataset"]["smoke"] is True
    assert smoked.data_note.short == "subset, smoke"
    assert "smoke test, not a result" in str(smoked)


def test_convolve_by_hand_is_the_numpy_convolution_and_draws_itself() -> None:
    from convlens.byhand import conv2d, get_kernel, max_pool2d

    photo = np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)
    result = convlens.convolve(photo, "vertical", at=(5, 7))
    expected = conv2d(photo, get_kernel("vertical").values)
    np.testing.assert_array_equal(result.filtered, expected)
    np.testing.assert_array_equal(result.pooled, max_pool2d(expected, 2))
    assert result.filtered.shape == (38, 48) and result.pooled.shape == (19, 24)
    assert str(result).startswith("40x50 -> conv 3x3 -> 38x48 -> maxpool 2 -> 19x24")
    assert result._repr_png_().startswith(PNG)
    typed = convlens.convolve(photo / 255, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(typed.filtered, expected)  # floats in 0..1, a list kernel


def test_convolve_takes_the_built_in_photo_like_convlens_filter() -> None:
    result = convlens.convolve("photo", "horizontal", pool=0)
    assert result.image.shape == (600, 512) and result.pooled is None
    assert result.filtered.shape == (598, 510)


def test_a_run_always_names_its_classes(run, tmp_path) -> None:
    """config.json without class names is refused when the run is read, in one line, so
    every answer can name its classes by ``run.class_names`` (no numbering fallback)."""
    import json
    import shutil

    folder = tmp_path / "nameless"
    shutil.copytree(run.path, folder)
    config = json.loads((folder / "config.json").read_text())
    config["class_names"] = []
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(convlens.ConvlensError, match="'class_names' must be a non-empty list"):
        convlens.predict(folder, np.zeros((1, 1, 28, 28), np.uint8))
