"""Look inside a trained run from Python: the functions a notebook calls.

::

    run = convlens.train("cnn")
    convlens.journey(run)                    # the lesson's three shoes (test 0, 23, 28)
    convlens.journey(run, [0, 1, 2])         # test images by index
    convlens.explain(run, "my_shoe.jpg")     # a photo, prepared like the training data
    convlens.filters(run)                    # the first conv layer's learned filters
    convlens.predict(run, images)            # arrays, tensors, PIL images or paths
    convlens.evaluate(run)                   # on the run's own test images

Each takes a :class:`~convlens.runs.Run`, a run folder or a run name, and returns a
result that draws itself in a notebook (a figure, or a table) and prints as the CLI's
text with ``str()``. Images are prepared the way the run's training data was (see
:mod:`convlens.data.preparation`); test images are named by their index.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convlens.data.preparation import as_images
from convlens.display import FigureResult, block, caveat_html, html_table, pixels_png, png_img
from convlens.errors import OptionError
from convlens.introspect.features import Journey
from convlens.introspect.saliency import Explanation
from convlens.models.network import Network
from convlens.predict import prepared_probabilities
from convlens.runs import CONFIG, WEIGHTS, Run
from convlens.train.evaluation import Evaluation
from convlens.wording import counted

RunRef = Run | str | os.PathLike[str]


def open_run(run: RunRef) -> Run:
    """A Run as it is, or the run folder (or name in ``./runs``) it names."""
    return run if isinstance(run, Run) else Run.open(run)


# --- what to look at ---------------------------------------------------------------


@dataclass(frozen=True)
class Chosen:
    """Images picked for a look: the network's input and names for people."""

    images: np.ndarray  # (N, C, H, W) uint8, prepared like the training data
    labels: tuple[str, ...]  # "test #23 (Ankle boot)", "shoe.jpg", "image 0"
    true_classes: tuple[int | None, ...]  # known for test images
    dataset: Any = None  # the run's data, when test images were asked for


def choose(run: Run, which: Any = None, *, data_dir: str | None = None) -> Chosen:
    """Test images by index (an int or a list of ints; None: the lesson's 0, 23, 28), or
    anything :func:`convlens.data.preparation.as_images` reads (arrays, tensors, PIL
    images, paths), prepared like the run's training data."""
    if isinstance(which, np.ndarray):  # a notebook's loop: pixels, never test indices
        images = as_images(which, run.preparation)
        return Chosen(images, *_numbered(len(images)))
    from convlens.introspect.selection import pick_images  # not for the loop: 1-2 us

    indices = _indices(which)
    if which is None or indices is not None:
        dataset = run_test_set(run, data_dir)
        picked = pick_images(dataset, indices=indices)
        labels = tuple(
            f"test #{i} ({dataset.class_names[int(dataset.test_labels[i])]})" for i in picked
        )
        truth = tuple(int(dataset.test_labels[i]) for i in picked)
        return Chosen(dataset.test_images[picked], labels, truth, dataset)
    images = as_images(which, run.preparation)
    return Chosen(images, _names(which, len(images)), (None,) * len(images))


def run_test_set(run: Run, data_dir: str | None = None, *, subsets: bool = False) -> Any:
    """The run's data (:meth:`Run.dataset`); with ``subsets`` only its own test subset.

    Test indices name images of the whole test set, as the CLI's ``--images`` does (the
    lesson's shoes are test images 0, 23 and 28 of Fashion-MNIST). Loading says when it
    falls back to the embedded sample (a SampleDataWarning).
    """
    return run.dataset(data_dir, subsets=subsets, progress=False)


def _indices(which: Any) -> list[int] | None:
    if isinstance(which, (bool, np.bool_)):
        return None
    if isinstance(which, (int, np.integer)):
        return [int(which)]
    if (
        isinstance(which, (list, tuple, range))
        and which
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in which)
    ):
        return [int(v) for v in which]
    return None


@functools.lru_cache(maxsize=16)
def _numbered(count: int) -> tuple[tuple[str, ...], tuple[None, ...]]:
    """Labels "image 0" ... and unknown true classes for ``count`` unnamed images, made
    once per count (a loop over one image asks for the same pair at every call)."""
    return tuple(f"image {i}" for i in range(count)), (None,) * count


def _names(which: Any, count: int) -> tuple[str, ...]:
    if isinstance(which, (str, os.PathLike)):
        return (Path(which).name,)
    if isinstance(which, (list, tuple)) and len(which) == count:
        return tuple(
            Path(v).name if isinstance(v, (str, os.PathLike)) else f"image {i}"
            for i, v in enumerate(which)
        )
    return tuple(f"image {i}" for i in range(count))


# --- results that show themselves -------------------------------------------------


@dataclass(frozen=True)
class JourneyView(FigureResult):
    """One filter through the conv and pool layers for a few images (the lesson's grid)."""

    journey: Journey
    labels: tuple[str, ...]
    title: str
    caveat: str = ""

    def figure(self) -> Any:
        from convlens.plots.journey import journey_figure

        return journey_figure(self.journey, list(self.labels), self.title)

    def __str__(self) -> str:
        result = self.journey
        lines = [result.shape_line()]
        if result.reason:
            lines.append(f"following filter {result.filter_index}: {result.reason}")
        lines += [
            f"filter {result.filter_index} of {layer} is dead: 0 on every one of "
            f"{result.reference_count:,} test images"
            for layer in result.dead
        ]
        lines += [
            f"{label}: predicted {self.journey.predicted_name(i)} {self.journey.probability[i]:.1%}"
            for i, label in enumerate(self.labels)
        ]
        return "\n".join(lines + ([f"({self.caveat})"] if self.caveat else []))


@dataclass(frozen=True)
class ExplanationView(FigureResult):
    """Why one image got its score: Grad-CAM, input gradients and the top classes."""

    explanation: Explanation
    class_names: tuple[str, ...]
    source: str
    true_class: int | None = None
    caveat: str = ""
    title: str = field(default="explanation")

    def figure(self) -> Any:
        from convlens.plots.saliency import explain_figure

        return explain_figure(
            self.explanation, self.class_names, self.source, true_class=self.true_class
        )

    def __str__(self) -> str:
        result, names = self.explanation, self.class_names
        p = result.probabilities
        lines = [f"{self.source}: predicted {names[result.predicted]} {p[result.predicted]:.1%}"]
        if result.cam_layer is None:
            lines.append("no conv layer: input gradients only (no Grad-CAM)")
        else:
            lines.append(f"Grad-CAM on {result.cam_layer} for '{names[result.target]}'")
        return "\n".join(lines + ([f"({self.caveat})"] if self.caveat else []))


@dataclass(frozen=True)
class FiltersView(FigureResult):
    """The kernels one conv layer learned: (F, C, k, k) weights."""

    weights: np.ndarray  # (F, C, k, k) float32
    layer: str
    channel: int | str = "mean"
    title: str = "learned filters"

    def figure(self) -> Any:
        from convlens.plots.learned_filters import filters_figure

        return filters_figure(self.weights, self.layer, self.channel)

    def __str__(self) -> str:
        count, channels, kh, kw = self.weights.shape
        return (
            f"{self.layer}: {count} kernels {kh}x{kw} over {counted(channels, 'input channel')}, "
            f"weights from {self.weights.min():.3g} to {self.weights.max():.3g}"
        )


@dataclass(frozen=True)
class Predictions:
    """The top classes for each image, as the CLI's ``predict`` prints them."""

    labels: tuple[str, ...]
    images: np.ndarray  # (N, C, H, W) uint8: what the network saw
    probabilities: np.ndarray  # (N, K)
    class_names: tuple[str, ...]
    caveat: str = ""

    def top(self, row: int, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities[row])[:k]
        return [(self.class_names[i], float(self.probabilities[row, i])) for i in order]

    @property
    def predicted(self) -> list[str]:
        """The predicted class of each image."""
        return [self.class_names[int(k)] for k in self.probabilities.argmax(axis=1)]

    def __len__(self) -> int:
        return len(self.labels)

    def __str__(self) -> str:
        lines = [
            f"{label}: " + ", ".join(f"{name} {p:.1%}" for name, p in self.top(i))
            for i, label in enumerate(self.labels)
        ]
        return "\n".join(lines + ([f"({self.caveat})"] if self.caveat else []))

    def _repr_html_(self) -> str:
        rows = []
        for i, label in enumerate(self.labels):
            ranked = self.top(i)
            rows.append((label, *(f"{name} {p:.1%}" for name, p in ranked)))
        width = max(len(r) for r in rows)
        header = ["image", "1st", "2nd", "3rd"][:width]
        table = html_table(header, [r + ("",) * (width - len(r)) for r in rows])
        pictures = "".join(
            png_img(pixels_png(image), label, max_width=64)
            for image, label in zip(self.images[:12], self.labels, strict=False)
        )
        return block(f"<div>{pictures}</div>", table, caveat_html(self.caveat))


# --- the functions ------------------------------------------------------------------


def journey(
    run: RunRef,
    images: Any = None,
    filter: int | None = None,
    *,
    layers: Sequence[str] | None = None,
    data_dir: str | None = None,
) -> JourneyView:
    """Follow one filter through every conv and pool layer, as ``convlens journey`` does.

    ``images``: test indices (default the lesson's shoes 0, 23 and 28) or your own
    images (see :func:`choose`). ``filter``: the index to follow in every layer (each
    layer's filter k is a different filter); default the lesson's 1 when it is live on
    these images, else the first live one (the figure says why). Filters dead on the
    first test images are marked.
    """
    from convlens.introspect.liveness import REFERENCE_IMAGES, follow_filter

    run = open_run(run)
    chosen = choose(run, images, data_dir=data_dir)
    dataset = chosen.dataset or run_test_set(run, data_dir)
    network = run.network()
    result = follow_filter(
        network,
        chosen.images,
        filter,
        layers,
        run.class_names,
        dataset.test_images[:REFERENCE_IMAGES],
    )
    title = f"Filter {result.filter_index} of each layer, through the layers of {run.name}"
    return JourneyView(result, chosen.labels, title, run.data_note.caveat)


def explain(
    run: RunRef,
    image: Any = 0,
    *,
    target: str | int | None = None,
    layer: str | None = None,
    data_dir: str | None = None,
) -> ExplanationView:
    """Grad-CAM and input gradients for one image: a test index (default 0) or your own.

    ``target`` explains that class (name or number) instead of the predicted one.
    """
    from convlens.introspect import explain as why
    from convlens.introspect import resolve_class

    run = open_run(run)
    chosen = choose(run, image, data_dir=data_dir)
    if len(chosen.images) != 1:
        raise OptionError(f"explain looks at one image, got {len(chosen.images)}; pass one")
    network = run.network()
    names = tuple(run.class_names)  # never empty: config.json's layout requires them
    wanted = None if target is None else resolve_class(target, names)
    result = why(network, chosen.images[0], wanted, layer)
    return ExplanationView(
        result, names, chosen.labels[0], chosen.true_classes[0], run.data_note.caveat
    )


def filters(run: RunRef, layer: str | None = None, channel: int | str = "mean") -> FiltersView:
    """The kernels conv layer ``layer`` learned (default: the first conv layer)."""
    from convlens.introspect import learned_filters

    run = open_run(run)
    network = run.network()
    name = layer or (network.conv_layer_names() or [None])[0]
    return FiltersView(learned_filters(network, name), str(name), channel)


def predict(run: RunRef, images: Any, *, data_dir: str | None = None) -> Predictions:
    """Class probabilities for test indices or your own images, prepared like the data.

    Called in a loop (one image at a time), it answers from the run it opened last
    time, config and network, while the run's files are the same files
    (:class:`_LoadedRuns`): building the network and loading its weights took about
    50 ms a call, reopening the run and parsing its config.json 0.45 ms of a 0.63 ms
    call, and a fresh network never reaches the fast engine, which builds on the second
    call with the same weights. What a call adds to the network's own answer is the
    check of those files (one ``os.stat`` of the weights for the same :class:`Run`
    handle as the last call, two for a path), the images' labels and the result
    (BENCHMARKS.md, "Session 11: `convlens.predict(run)` on Zen 4").
    """
    loaded = _LOADED.run(run)
    chosen = choose(loaded.run, images, data_dir=data_dir)  # an array: its cheap branch
    probabilities = prepared_probabilities(loaded.network, chosen.images, **loaded.views)
    return Predictions(chosen.labels, chosen.images, probabilities, loaded.names, loaded.caveat)


@dataclass(frozen=True)
class _Loaded:
    """A run as :func:`predict` answers from it: the handle (its config parsed), its
    network, and what every answer carries, worked out once."""

    run: Run
    network: Network
    views: dict[str, bool]  # the recipe's test-time views, predict_arrays' keywords
    names: tuple[str, ...]
    caveat: str | None

    @classmethod
    def of(cls, run: Run) -> _Loaded:
        network = run.network()  # raises the run's own error when the weights are missing
        names = tuple(run.class_names)  # never empty (config.json's layout)
        views = run.run_config.train.tta_options()
        return cls(run, network, views, names, run.data_note.caveat)


FileKey = tuple[int, int, int, int]  # a file's (device, inode, size, modification time)


@dataclass(frozen=True)
class _Kept:
    """A loaded run and the files it was loaded from: their paths and keys.

    ``direct``: the reference names the folder itself (a Run, or a path holding a
    config.json), so an ``os.stat`` of these paths is all that finding the run again
    does. ``handle``: the :class:`Run` object of the call that last checked both files;
    its next calls check the weights alone."""

    config: str
    weights: str
    config_key: FileKey
    weights_key: FileKey
    direct: bool
    loaded: _Loaded
    handle: Run | None = None


class _LoadedRuns:
    """The opened run (its config parsed once) and ``run.network()`` for :func:`predict`,
    kept per reference (a path or name as given, a Run's folder) while the files it
    finds now are the files that were loaded: config.json and the weights on the same
    device and inode, of the same size and modification time. Training replaces them
    with ``os.replace`` (a new inode); a file rewritten in place has a new size or time;
    another folder moved to the path, or a relative path read from another working
    directory, holds other inodes.

    Nothing is trusted between calls but the config a :class:`Run` handle has read: a
    path is checked by an ``os.stat`` of both files at every call, and a name found in
    the runs folder is looked for first as a folder of its own, as :meth:`Run.open`
    does (its config.json's stat is the one that found it). The Run object whose call
    last checked both files checks only the weights' stat at its next calls: a Run
    reads its config.json once (its ``run_config``, which ``journey``, ``explain`` and
    ``evaluate`` answer with), so a config.json replaced behind a handle may go unseen by
    that handle; ``Run.open`` (a new handle) and the path read it. Weights replaced in
    any way are seen at the next call by every reference. The first ``os.stat`` after a
    one-image run of the network costs 9-11 us on Zen 4 (the network's work leaves the
    kernel's caches cold; 2-3 us in a loop of its own), a second one 2-3 us more
    (BENCHMARKS.md, "Session 11: `convlens.predict(run)` on Zen 4").

    The keys are taken before the files are read, so a change while they are read is
    seen by the next call. The networks never leave this module (predict returns only
    probabilities), so no caller can change one behind the key; the last ``KEEP``
    references are kept (about 1 MB each for cnn, with the fast engine's sessions)."""

    KEEP = 8

    def __init__(self) -> None:
        self._runs: OrderedDict[str, _Kept] = OrderedDict()
        self._newest = ""  # the reference last kept or found: no reordering for a loop's
        self._lock = threading.Lock()

    def run(self, ref: RunRef) -> _Loaded:
        handle = ref if isinstance(ref, Run) else None
        name = str(ref.path) if handle is not None else os.fspath(ref)
        kept = self._runs.get(name)
        if kept is not None and kept.direct and _file_key(kept.weights) == kept.weights_key:
            if handle is not None and kept.handle is handle:  # the handle's config is its own
                return kept.loaded if self._newest == name else self._found(name, kept)
            if _file_key(kept.config) == kept.config_key:
                return self._found(name, kept if handle is None else _rehandled(kept, handle))
        found = _find(ref)
        if found is None:  # a file missing: open and load as before, for the run's own error
            return _Loaded.of(open_run(ref))
        folder, config_key = found
        config, weights = os.path.join(folder, CONFIG), os.path.join(folder, WEIGHTS)
        weights_key = _file_key(weights)
        if weights_key is None:
            return _Loaded.of(open_run(ref))
        if kept is not None and (kept.config_key, kept.weights_key, kept.config, kept.weights) == (
            config_key,
            weights_key,
            config,
            weights,
        ):
            loaded = kept.loaded  # found in the runs folder: the same files as before
        else:
            loaded = _fresh(folder)
        direct = folder == name
        return self._found(
            name, _Kept(config, weights, config_key, weights_key, direct, loaded, handle)
        )

    def _found(self, name: str, kept: _Kept) -> _Loaded:
        """``kept``'s run, kept as the newest reference (the oldest beyond ``KEEP`` go)."""
        if self._newest != name or self._runs.get(name) is not kept:
            with self._lock:
                self._runs[name] = kept
                self._runs.move_to_end(name)
                self._newest = name
                while len(self._runs) > self.KEEP:
                    self._runs.popitem(last=False)
        return kept.loaded


def _rehandled(kept: _Kept, handle: Run) -> _Kept:
    """``kept`` with ``handle`` as the Run whose next calls check the weights alone."""
    if kept.handle is handle:
        return kept
    return dataclasses.replace(kept, handle=handle)


def _fresh(folder: str) -> _Loaded:
    """The run in ``folder`` opened and loaded anew, by its absolute path: a relative
    one would move with the working directory."""
    return _Loaded.of(Run(Path(os.path.abspath(folder))))


def _find(ref: RunRef) -> tuple[str, FileKey] | None:
    """The run's folder (as :meth:`Run.open` finds it) and its config.json's
    :data:`FileKey`, or None if there is none."""
    from convlens.runs import find_run

    if isinstance(ref, Run):
        folder = str(ref.path)
        key = _file_key(os.path.join(folder, CONFIG))
        return None if key is None else (folder, key)
    found = find_run(ref)
    return None if found is None else (found[0], _key(found[1]))


def _file_key(path: str) -> FileKey | None:
    """What identifies a file's contents without reading it, or None if it is missing."""
    try:
        return _key(os.stat(path))
    except (OSError, ValueError):
        return None


def _key(stat: os.stat_result) -> FileKey:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


_LOADED = _LoadedRuns()


def evaluate(run: RunRef, *, data_dir: str | None = None) -> Evaluation:
    """The run's accuracy, per class and confusion, on its own test images (fp32)."""
    from convlens.train.evaluation import evaluate_network

    run = open_run(run)
    dataset = run_test_set(run, data_dir, subsets=True)  # as metrics.json judged it
    network = run.network()
    views = run.run_config.train.tta_options()
    evaluation = evaluate_network(
        network, dataset.test_images, dataset.test_labels, dataset.class_names, **views
    )
    return evaluation.with_caveat(run.data_note.caveat)
