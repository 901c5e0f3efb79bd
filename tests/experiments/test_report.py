"""report.html for a run, a sweep and a comparison: self-contained, escaped, renders."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from convlens.cli.main import main
from convlens.compare import compare
from convlens.data.config import DataConfig
from convlens.errors import RunError
from convlens.experiments.sweep import sweep
from convlens.recipe import TrainConfig
from convlens.reports import write_report
from convlens.runs import Run

# A name full of HTML: every page must show it as text, never as markup.
NASTY = 'tiny <b> & "q"'
SPEC = f"""name: '{NASTY}'
layers: "conv(8, 3, relu), maxpool(2), flatten, dense(16, relu), dense(3, softmax)"
"""
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_idx_dir) -> dict[str, Path]:
    """A run trained from the command line with --keep best, a sweep and a comparison.

    The slow learning rate leaves the run a few mistakes to show after three epochs.
    """
    root = tmp_path_factory.mktemp("report")
    spec = root / "spec.yaml"
    spec.write_text(SPEC)
    data = ["--data", f"idx:{tiny_idx_dir}", "--runs", str(root)]
    recipe = ["--precision", "fp32", "--batch-size", "16", "--quiet"]
    code = main(["train", str(spec), "--epochs", "3", "--lr", "0.0002", "--keep", "best",
                 "--name", "run", *data, *recipe])  # fmt: skip
    assert code == 0
    config = TrainConfig(epochs=1, precision="fp32", batch_size=16)
    data_config = DataConfig(dataset=f"idx:{tiny_idx_dir}")
    swept = sweep(str(spec), {"filters": [4, 8]}, data=data_config, config=config,
                  runs_dir=root, name="s", executor="inline")  # fmt: skip
    compared = compare(["flatten, dense(3, softmax)"], data=data_config, config=config,
                       runs_dir=root, name="c")  # fmt: skip
    return {"run": root / "run", "sweep": swept.path, "compare": compared.path}


def images_of(page: str) -> list[Image.Image]:
    """Every <img> of the page, decoded; each must be an inline PNG."""
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    decoded = []
    for source in sources:
        assert source.startswith("data:image/png;base64,"), source[:40]
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.load()  # decodes the whole file: a truncated PNG fails here
        decoded.append(image)
    return decoded


def assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower()
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []  # nothing to fetch
    assert "@import" not in page and "url(" not in page


def test_keep_best_works_from_the_command_line(folders) -> None:
    run = Run(folders["run"])
    metrics = run.metrics()
    assert run.config["train"]["keep"] == "best"
    assert metrics["weights_epoch"] == metrics["best_epoch"]
    assert metrics["test_accuracy"] == pytest.approx(metrics["best_test_accuracy"])


def test_a_run_report_has_figures_tables_verdict_and_mistakes(folders) -> None:
    path = write_report(folders["run"])
    assert path == folders["run"] / "report.html"
    page = path.read_text()
    assert_self_contained(page)
    for heading in ("Overfitting", "Training curves", "Confusion matrix", "Per-class accuracy",
                    "Misclassified test images", "Configuration", "Model summary"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert 'class="verdict' in page
    images = images_of(page)
    assert len(images) >= 3  # curves, confusion and at least one mistake
    mistakes = re.findall(r'<figure class="mistake">.*?</figure>', page, flags=re.S)
    assert 1 <= len(mistakes) <= 8
    assert all(m.count("<li>") == 3 for m in mistakes)  # the top 3 predictions
    assert {img.size for img in images[2:]} == {(84, 84)}
    # text from files is escaped, never markup
    assert "tiny &lt;b&gt; &amp; &quot;q&quot;" in page
    assert NASTY not in page and "<b> &" not in page


def test_the_mistakes_of_a_flip_averaged_run_are_judged_with_flips(tmp_path, tiny_idx_dir) -> None:
    """The report finds a run's mistakes as its evaluation did: a --tta-flip run's
    probabilities are averaged with the mirror's, as in training's test pass (the
    reference), and give the confusion matrix of metrics.json."""
    import numpy as np
    import torch

    from convlens.reports.run_report import predictions_on_test_set
    from convlens.train.engine import predict_view_logits
    from convlens.train.runtime import resolve_runtime
    from convlens.train.session import train

    config = TrainConfig(
        epochs=1, batch_size=16, augment=True, tta_flip=True, precision="fp32", device="cpu"
    )
    run = train("flatten, dense(3, softmax)", data=DataConfig(dataset=f"idx:{tiny_idx_dir}"),
                config=config, runs_dir=tmp_path, name="flip")  # fmt: skip
    images, labels, probabilities = predictions_on_test_set(run)  # (N, C, H, W), (N,), (N, K)

    runtime = resolve_runtime(config.replace(channels_last=False))
    logits = predict_view_logits(
        run.load_network(), torch.from_numpy(images), runtime, tta_flip=True
    ).views
    np.testing.assert_allclose(probabilities, logits.exp().numpy(), rtol=1e-5, atol=1e-6)
    confusion = np.zeros((3, 3), dtype=np.int64)
    np.add.at(confusion, (labels, probabilities.argmax(axis=1)), 1)
    assert confusion.tolist() == run.metrics()["confusion"]


def test_a_sweep_report_shows_the_results_pareto_and_sweet_spot(folders, capsys) -> None:
    assert main(["report", str(folders["sweep"])]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (folders["sweep"] / "report.html").read_text()
    assert_self_contained(page)
    assert "Sweet spot: filters=" in page and 'class="spot-row"' in page
    assert "<td>filters=4</td>" in page and "<td>filters=8</td>" in page
    assert len(images_of(page)) == 2  # pareto.png and the sweet spot's curves
    assert "tiny &lt;b&gt; &amp; &quot;q&quot;" in page and NASTY not in page


def test_a_compare_report_and_the_out_option(folders, tmp_path) -> None:
    out = write_report(folders["compare"], tmp_path)
    assert out == tmp_path / "report.html"
    page = out.read_text()
    assert_self_contained(page)
    assert "<h2>Side by side</h2>" in page and len(images_of(page)) == 1
    with pytest.raises(RunError, match="nothing to report"):
        write_report(tmp_path / "empty")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed")
def test_the_run_report_renders_in_a_browser(folders, tmp_path) -> None:
    page = folders["run"] / "report.html"
    if not page.exists():
        write_report(folders["run"])
    shot = tmp_path / "report.png"
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1200,2000", page.resolve().as_uri(),
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert shot.is_file(), "Chromium wrote no screenshot"
    keep = Path("/tmp/convlens-report-screenshot.png")
    shutil.copyfile(shot, keep)  # for a person to look at
    with Image.open(shot) as image:
        grey = image.convert("L")
        assert grey.size == (1200, 2000)
        histogram = grey.histogram()
        dark = sum(histogram[:128]) / (1200 * 2000)
        assert grey.getextrema()[0] < 60  # black text is drawn
        assert 0.01 < dark < 0.6  # neither blank nor a black page
        distinct = sum(1 for count in histogram if count)
        assert distinct > 50  # figures and text, not a flat colour


def test_the_run_reports_model_summary_wraps_its_why_lines(folders, tmp_path) -> None:
    """The summary's why-lines run to 180 characters; on the page they wrap, in full."""
    import html as html_module

    from convlens.reports.run_report import SUMMARY_WIDTH

    page = write_report(folders["run"], tmp_path / "r").read_text()
    summary = re.search(r"<h2>Model summary</h2>.*?<pre>(.*?)</pre>", page, re.S)
    assert summary is not None
    text = html_module.unescape(summary.group(1))
    assert max(len(line) for line in text.splitlines()) <= SUMMARY_WIDTH
    original = (folders["run"] / "summary.txt").read_text()
    assert " ".join(text.split()) == " ".join(original.split())  # nothing lost
