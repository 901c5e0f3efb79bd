"""The report of one run: numbers, overfitting verdict, curves, confusion, mistakes, config.

The misclassified images are found again by reloading the run's data (``config.json``
says which, and which ``--test-subset``) and predicting with its saved weights (averaged
with the mirror image and shifted copies when the run used ``tta_flip`` and
``tta_shift``), so they are exactly the test images the run was evaluated on, judged as it
was judged.
"""

from __future__ import annotations

import io
from typing import Any

from convlens import fileio, runs
from convlens.errors import ConvlensError
from convlens.reports.html import (
    bar,
    cards,
    esc,
    figure_file,
    img,
    note,
    para,
    pct,
    points,
    section,
    table,
)
from convlens.run_config import DatasetFacts, RunConfig

MISTAKES = 8  # misclassified test images shown
SCALE = 3  # a 28x28 image is drawn at 84x84 pixels
SUMMARY_WIDTH = 96  # characters: the page's 1080 px at 12.5 px monospace, with room
CALM = ("no sign", "still improving", "too short")  # verdicts shown in green


def run_body(run: runs.Run, *, data_dir: str | None = None) -> tuple[str, str, str]:
    """(title, subtitle, body HTML) for ``run``; works on unfinished runs too."""
    config = run.run_config
    state = run.state()
    info = config.dataset or DatasetFacts()
    subtitle = (
        f"{config.model.name} on {_known(info.name)} ({_known(info.train_count)} train / "
        f"{_known(info.test_count)} test images); status {state.get('status')}"
    )
    metrics = run.metrics() if run.file(runs.METRICS_JSON).is_file() else None
    history = run.history()
    imported = config.imported
    if imported and metrics is None:  # trained elsewhere: judge it on its test set now
        metrics = _imported_metrics(run, data_dir)
    parts = [_headline(metrics, state) if not imported else _imported_headline(metrics, imported)]
    if run.data_note.caveat:  # the sample, a subset or smoke mode: said before any figure
        parts.insert(0, para(f"Data: {run.data_note.caveat}.", "verdict"))
    if history:
        sample = (metrics or {}).get("test_sample_images")
        parts.append(section("Overfitting", _overfitting(history, sample)))
        curves = figure_file(run.file(runs.CURVES), "loss and accuracy per epoch")
        parts.append(section("Training curves", curves))
    if metrics is not None:
        if run.file(runs.CONFUSION).is_file():
            confusion = figure_file(run.file(runs.CONFUSION), "confusion matrix of the test set")
            parts.append(section("Confusion matrix", confusion))
        parts.append(section("Per-class accuracy", _per_class(metrics)))
        parts.append(section("Misclassified test images", _mistakes(run, data_dir)))
    parts.append(section("Configuration", _settings(run, config)))
    summary = run.summary_text()
    if summary is not None:
        text = wrap_summary(summary)
        parts.append(section("Model summary", f"<pre>{esc(text)}</pre>"))
    return f"Run {run.name}", subtitle, "\n".join(parts)


def wrap_summary(text: str, width: int = SUMMARY_WIDTH) -> str:
    """The model summary with its long lines (the "why:" explanations, up to 180
    characters) wrapped at ``width``, continuing under the text after "why:", so a page
    shows all of them instead of cutting them off at its right edge."""
    import textwrap

    lines = []
    for line in text.splitlines():
        if len(line) <= width:
            lines.append(line)
            continue
        stripped = line.lstrip()
        lead = line[: len(line) - len(stripped)]
        hang = lead + " " * (len("why: ") if stripped.startswith("why: ") else 2)
        lines += textwrap.wrap(stripped, width, initial_indent=lead, subsequent_indent=hang)
    return "\n".join(lines)


def _headline(metrics: dict[str, Any] | None, state: dict[str, Any]) -> str:
    if metrics is None:
        why = state.get("message") or "no final metrics yet"
        return para(
            f"This run has not finished ({state.get('status')}, "
            f"{state.get('epochs_done', 0)} epochs done): {why}.",
            "verdict",
        )
    return cards(
        [
            (pct(metrics["test_accuracy"]), "test accuracy"),
            _train_card(metrics),
            (str(metrics["epochs_done"]), "epochs"),
            (f"{metrics['seconds_per_epoch']:.1f} s", "per epoch (median)"),
            (str(metrics.get("weights_epoch", metrics["epochs_done"])), "weights from epoch"),
        ]
    )


def _imported_metrics(run: runs.Run, data_dir: str | None) -> dict[str, Any] | None:
    """test accuracy, loss, per-class accuracy and confusion of an imported run, now."""
    from convlens.train.evaluation import evaluate_network

    try:
        images, labels, _ = predictions_on_test_set(run, data_dir)
    except ConvlensError:
        return None  # the mistakes section says why
    return evaluate_network(run.load_network(), images, labels, run.class_names).to_dict()


def _imported_headline(metrics: dict[str, Any] | None, origin: dict[str, Any]) -> str:
    where = (
        f"Imported from {origin.get('file')} ({origin.get('format')}, "
        f"sha256 {str(origin.get('sha256', ''))[:12]}); trained outside convlens, so it "
        "has no training curves."
    )
    if metrics is None:
        return para(where + " Its test images could not be loaded.", "verdict")
    figures = [(pct(metrics["test_accuracy"]), "test accuracy"),
               (f"{metrics['test_loss']:.4f}", "test loss"),
               (f"{metrics['test_count']:,}", "test images")]  # fmt: skip
    return cards(figures) + para(where)


def _train_card(metrics: dict[str, Any]) -> tuple[str, str]:
    """The measured train accuracy, or an older run's running mean, named as such."""
    if metrics.get("train_accuracy") is not None:
        images = metrics.get("train_sample_images")
        where = f" on {images:,} training images" if images else ""
        return pct(metrics["train_accuracy"]), f"train accuracy (end of last epoch{where})"
    return pct(metrics.get("running_accuracy")), "train accuracy (running mean over the steps)"


def _overfitting(history: list[dict[str, float]], sample_images: int | None) -> str:
    from convlens.experiments.overfit import overfitting

    v = overfitting(history, sample_images=sample_images)
    headers = ["best test epoch", "best test accuracy", "final test accuracy"]
    gap = "final train-test gap (points)" if v.train_measured else "final gap, running mean"
    headers += [gap, "fell after best"]
    row = [v.best_epoch, pct(v.best_test_accuracy), pct(v.final_test_accuracy)]
    row += [points(v.final_gap), "yes" if v.fell_after_best else "no"]
    css = "verdict fine" if v.verdict in CALM else "verdict"
    return para(v.text, css) + table(headers, [row], numeric=(0, 1, 2, 3))


def _per_class(metrics: dict[str, Any]) -> str:
    confusion = metrics.get("confusion") or []
    rows = []
    for index, (name, accuracy) in enumerate(metrics["per_class_accuracy"].items()):
        count = sum(confusion[index]) if index < len(confusion) else ""
        known = accuracy == accuracy  # NaN for a class absent from the test set
        rows.append([name, pct(accuracy) if known else "n/a", count, bar(accuracy if known else 0)])
    return table(["class", "accuracy", "test images", ""], rows, numeric=(1, 2), raw=(3,))


def _mistakes(run: runs.Run, data_dir: str | None) -> str:
    """Up to MISTAKES misclassified test images, the most confident mistakes first."""
    import numpy as np

    try:
        images, labels, probabilities = predictions_on_test_set(run, data_dir)
    except ConvlensError as err:
        return note(f"The test images could not be loaded again: {err}")
    predicted = probabilities.argmax(axis=1)  # (N,)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return note("None: every test image is classified correctly.")
    confidence = probabilities[wrong, predicted[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:MISTAKES]
    names = run.class_names
    figures = []
    for i in chosen:
        top = np.argsort(-probabilities[i])[:3]
        ranked = "".join(f"<li>{esc(names[k])} {probabilities[i, k]:.1%}</li>" for k in top)
        picture = img(png(images[i]), f"test image {i}", css_class="digit",
                      width=SCALE * images.shape[-1])  # fmt: skip
        caption = f'test[{i}]: <span class="truth">{esc(names[labels[i]])}</span>'
        figures.append(
            f'<figure class="mistake">{picture}<figcaption>{caption}'
            f"<ol>{ranked}</ol></figcaption></figure>"
        )
    text = (
        f"{len(wrong):,} of {len(labels):,} test images are misclassified. The most confident "
        "mistakes, with the true class (green) and the network's top 3:"
    )
    return note(text) + '<div class="grid">' + "".join(figures) + "</div>"


def predictions_on_test_set(run: runs.Run, data_dir: str | None = None):
    """(images (N, C, H, W) uint8, labels (N,), probabilities (N, K)) for the run's test
    set: the same images, the same ``test_subset`` and the same test-time views
    (``tta_flip``, ``tta_shift``) it was evaluated with, so the mistakes agree with its
    confusion matrix."""
    from convlens.predict import predict_arrays

    dataset = run.dataset(data_dir, progress=False)
    views = run.run_config.train.tta_options()
    probabilities = predict_arrays(run.network(), dataset.test_images, **views)
    return dataset.test_images, dataset.test_labels, probabilities


def _known(value: Any) -> Any:
    return "?" if value is None else value


def png(image: Any) -> bytes:
    """(C, H, W) uint8 -> PNG bytes, enlarged SCALE times with square pixels."""
    import numpy as np
    from PIL import Image

    array = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
    picture = Image.fromarray(np.ascontiguousarray(array))
    h, w = array.shape[:2]
    picture = picture.resize((w * SCALE, h * SCALE), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _settings(run: runs.Run, config: RunConfig) -> str:
    spec = config.model
    rows: list[list[Any]] = [["model", spec.name], ["layers", spec.to_text()]]
    if config.imported:  # its recipe is not ours to show: where it came from instead
        rows += [[f"imported.{k}", v] for k, v in config.imported.items() if v]
    else:
        rows += [[f"train.{k}", v] for k, v in config.train.to_dict().items() if v is not None]
    rows += [[f"data.{k}", v] for k, v in config.data.to_dict().items() if v is not None]
    facts = config.dataset.to_dict() if config.dataset else {}
    rows += [[f"dataset.{k}", v] for k, v in facts.items()]
    if run.file(runs.ENV).is_file():
        env = fileio.read_json(run.file(runs.ENV))
        keys = ("device", "precision", "threads", "torch", "processor")
        rows += [[f"env.{k}", env[k]] for k in keys if k in env]
    return table(["setting", "value"], rows)
