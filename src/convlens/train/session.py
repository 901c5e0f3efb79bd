"""A training run from start to finish: data, network, epochs, checkpoints, final files.

``train()`` starts a run folder and fills it; ``resume()`` continues one from its last
completed epoch. Both go through ``_fit``, which owns the order of writes that makes a
run recoverable: after every epoch, checkpoint first, then metrics, then state.
"""

from __future__ import annotations

import datetime as dt
import platform
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convlens import fileio, runs
from convlens.background_import import BackgroundImport
from convlens.data.config import DataConfig
from convlens.data.dataset import Dataset
from convlens.data.preparation import Preparation
from convlens.errors import Interrupted, TrainingDiverged
from convlens.models.footprint import Footprint, check_memory
from convlens.models.inputs import to_tensor
from convlens.models.network import Network, build_network
from convlens.models.onnx_runtime import exporter_modules
from convlens.models.registry import PRESETS, resolve_model
from convlens.models.resizing import check_resizable
from convlens.models.spec import ModelSpec
from convlens.models.summary import summarize
from convlens.models.tta import view_count
from convlens.models.weights import save_weights
from convlens.models.whitening import fit_whitening
from convlens.notices import SmokeModeWarning, say
from convlens.recipe import TrainConfig, apply_subsets
from convlens.run_config import DatasetFacts, RunConfig
from convlens.runs import Run
from convlens.train import smoke
from convlens.train.averaging import WeightAverage
from convlens.train.checkpoint import TrainingState, load_checkpoint, save_checkpoint
from convlens.train.engine import OPTIMIZER_MODULES, make_optimizer, pass_batch, train_epoch
from convlens.train.epoch_evaluation import (
    EpochEvaluation,
    epoch_test_sample,
    evaluate_epoch,
    train_sample,
)
from convlens.train.evaluation import FINAL_RUNTIME, Evaluation, evaluate_network
from convlens.train.lookahead import Lookahead
from convlens.train.progress import EVALUATE, FINISH, Reporter, SilentReporter, reporter_for
from convlens.train.runtime import Runtime, resolve_runtime
from convlens.train.threads import ThreadChooser, ThreadTuner
from convlens.version import __version__

#: What the finish imports to draw and save its two figures (matplotlib: about half a
#: second and more in a fresh process), imported while the data loads.
FIGURE_MODULES = (
    "convlens.plots.curves",
    "convlens.plots.confusion",
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
)


def _import_ahead() -> BackgroundImport:
    """The modules a fresh process would import on a run's way (the optimizer's
    ``torch._dynamo``, then the evaluation's exporter and the figures: about 3 s on Zen
    1), imported on another thread while the data loads and the network is built, in the
    order the run needs them; ``_fit`` waits for them all before the first step."""
    return BackgroundImport((*OPTIMIZER_MODULES, *exporter_modules(), *FIGURE_MODULES))


def train(
    model: str | ModelSpec,
    *,
    data: DataConfig | None = None,
    config: TrainConfig | None = None,
    runs_dir: str | Path | None = None,
    name: str | None = None,
    reporter: Reporter | None = None,
    dataset: Dataset | None = None,
    recipe_preset: str | None = None,
    progress: bool | None = None,
    live: bool = False,
    footprint: Footprint | None = None,
) -> Run:
    """Train ``model`` (preset name, spec file, layer text or ModelSpec) into a new run.

    ``dataset`` may pass an already loaded :class:`convlens.data.Dataset` (compare and
    sweeps load it once for many runs); otherwise ``data`` says what to load.
    ``recipe_preset`` names the preset whose recipe ``config`` started from (``fast`` for
    ``convlens train cnn-bn --preset fast``); it is recorded as config.json's "recipe".
    Without a ``reporter``: a progress bar when ``progress`` (default: in a notebook
    only), and with ``live=True`` the curves redrawn in place after every epoch.
    ``CONVLENS_SMOKE=1`` caps the epochs and data (see :mod:`convlens.train.smoke`).
    ``footprint``: the spec's :class:`~convlens.models.footprint.Footprint` on the data's
    input from a fit already checked (a sweep plans every trial so), used instead of
    working the shapes out again; ignored when it describes another spec or input.
    """
    imports = _import_ahead()
    data = data or DataConfig()
    config, smoke_note = smoke.cap(config or TrainConfig())
    # A library call's reporter does not repeat what a warning has just said.
    repeat_warnings = reporter is not None
    reporter = reporter or reporter_for(progress, live)
    spec = resolve_model(model) if isinstance(model, str) else model
    if smoke_note:
        say(smoke_note, SmokeModeWarning)
        if repeat_warnings:
            reporter.note(smoke_note)
    if dataset is None:
        dataset = data.load(progress=not isinstance(reporter, SilentReporter))
        if dataset.notice and (repeat_warnings or not dataset.is_sample):
            reporter.note(dataset.notice)
    dataset = apply_subsets(dataset, config)
    # Before creating the folder: a spec that cannot fit the data or the memory fails here.
    planned = footprint is not None and footprint.describes(spec, dataset.input_shape)
    footprint = check_memory(
        spec, dataset.input_shape, batch_size=config.batch_size, found=footprint
    )
    if config.resize is not None:  # progressive resizing needs a size-free head
        check_resizable(spec, dataset.input_shape, config.resize_sizes())
    if planned:  # its shapes were checked to fit when it was planned; the classes here
        spec.check_classifier(footprint.shapes, dataset.num_classes)
    else:
        build_network(spec, dataset.input_shape, dataset.num_classes, footprint=footprint)
    run_name = name or runs.new_run_name(spec.name)
    run_config = RunConfig(
        name=run_name,
        model=spec,
        preset=spec.name if spec.name in PRESETS else None,  # the model's
        recipe=recipe_preset,  # the preset whose recipe was the starting point, or None
        data=data,
        dataset=DatasetFacts.of(
            dataset,
            smoke=smoke.smoke_mode(),
            # how its images look, so predict/explain/journey prepare photos to match
            preparation=Preparation.measure(dataset.train_images).to_dict(),
        ),
        train=config,
        class_names=tuple(dataset.class_names),
        input_shape=dataset.input_shape,
        created=dt.datetime.now().isoformat(timespec="seconds"),
        convlens_version=__version__,
    )
    root = Path(runs_dir or runs.default_runs_dir())
    with runs.write_lock(root / runs.check_name(run_name), hint="choose another --name"):
        run = Run.create(root, run_name, run_config)
        return _fit(
            run,
            spec,
            dataset,
            config,
            reporter,
            resume=False,
            footprint=footprint,
            imports=imports,
        )


def resume(
    ref: str | Path,
    *,
    runs_dir: str | Path | None = None,
    epochs: int | None = None,
    data_dir: str | None = None,
    threads: int | None = None,
    device: str | None = None,
    reporter: Reporter | None = None,
) -> Run:
    """Continue a run from its last completed epoch up to its planned (or new) epochs.

    The recipe is the run's own; ``threads`` and ``device`` only say where it runs now
    (``env.json`` records what was used).
    """
    reporter = reporter or SilentReporter()
    run = Run.open(ref, runs_dir)
    with runs.write_lock(run.path, hint="wait for it to end, or stop it first"):
        return _resume_locked(run, epochs, data_dir, threads, device, reporter, _import_ahead())


def _resume_locked(
    run: Run,
    epochs: int | None,
    data_dir: str | None,
    threads: int | None,
    device: str | None,
    reporter: Reporter,
    imports: BackgroundImport,
) -> Run:
    saved = run.config
    config = run.run_config.train
    if smoke.smoke_mode() and epochs is not None:  # the run's data stays the run's
        epochs = min(epochs, smoke.SMOKE_EPOCHS)
    if epochs is not None:
        config = replace(config, epochs=epochs)
        config.validate()
    if threads is not None or device is not None:
        config = replace(config, threads=threads or config.threads, device=device or config.device)
        config.validate()
    state = run.state()
    done = int(state.get("epochs_done", 0))
    if state.get("status") in ("complete", "stopped") and done >= config.epochs:
        reporter.note(f"{run.path} already finished {done} epochs; nothing to do")
        return run
    dataset = run.dataset(data_dir, progress=not isinstance(reporter, SilentReporter))
    if config.epochs != saved["train"]["epochs"]:
        train_section = {**saved["train"], "epochs": config.epochs}  # nothing else changes
        run.write_config({**saved, "train": train_section})
    started = run.file(runs.CHECKPOINT).exists()
    if not started:  # stopped before its first epoch ended: it starts again, same recipe
        reporter.note(f"{run.path} finished no epoch before it stopped; training it from the start")
    return _fit(run, run.spec(), dataset, config, reporter, resume=started, imports=imports)


def _fit(
    run: Run,
    spec: ModelSpec,
    dataset: Dataset,
    config: TrainConfig,
    reporter: Reporter,
    *,
    resume: bool,
    imports: BackgroundImport,
    footprint: Footprint | None = None,
) -> Run:
    footprint = check_memory(
        spec, dataset.input_shape, batch_size=config.batch_size, found=footprint
    )
    runtime = resolve_runtime(config)
    cpu = runtime.device.type == "cpu"
    first_guess = ThreadChooser(config.threads) if cpu else None  # watches while we set up
    torch.manual_seed(config.seed)  # the initial weights
    network = build_network(spec, dataset.input_shape, dataset.num_classes, footprint=footprint)
    if not resume:  # a resumed run's filters come back with its checkpoint
        fit_whitening(network, dataset.train_images)
    summary = summarize(network)
    network = _place(network, runtime)
    optimizer = make_optimizer(network.parameters(), config)
    # With ``ema`` the averaged copy is what each epoch judges, keeps and saves.
    average = WeightAverage(network, config.ema) if config.ema else None
    averaged = average.network if average is not None else None
    lookahead = (
        Lookahead(network, config.lookahead, config.lookahead_alpha) if config.lookahead else None
    )
    judged = averaged if averaged is not None else network
    if resume:
        for stray in run.path.glob(".*.tmp"):  # a write that a kill cut short
            stray.unlink(missing_ok=True)
        steps = config.steps_per_epoch(len(dataset.train_labels))
        state = load_checkpoint(
            run.file(runs.CHECKPOINT),
            network,
            optimizer,
            steps_per_epoch=steps,
            average=averaged,
            lookahead=lookahead,
        )
        state.history = [runs.upgrade_history_row(row) for row in state.history]
        reporter.note(f"resuming {run.path} after epoch {state.epoch} of {config.epochs}")
    else:
        state = TrainingState(epoch=0)
        fileio.write_json(run.file(runs.SPEC), spec.to_dict())
        fileio.write_text(run.file(runs.SUMMARY), summary.format(explain=True) + "\n")
    fileio.write_json(run.file(runs.ENV), environment(runtime, config, dataset))

    # The data lives on the device as uint8 (N, C, H, W); batches are scaled as they go.
    x_train = to_tensor(dataset.train_images).to(runtime.device)
    y_train = to_tensor(dataset.train_labels).to(runtime.device)
    x_test = to_tensor(dataset.test_images).to(runtime.device)
    y_test = to_tensor(dataset.test_labels).to(runtime.device)

    run.write_state("running", state.epoch)
    stopped = _early_stop_message(config, state.history)  # a stopped run killed while finishing
    first = config.epochs + 1 if stopped else state.epoch + 1
    sample = train_sample(x_train.shape[0], x_test.shape[0], config.seed)
    # a small run's test sample: by the images an epoch trains on (epoch_images, if fewer)
    epoch_count = min(x_train.shape[0], config.epoch_images or x_train.shape[0])
    tests = epoch_test_sample(epoch_count, x_test.shape[0], config.seed)
    # The planned last epoch is measured as the saved weights are judged (fp32, on the
    # CPU, channels_last, the finish's batches), so the finish can reuse that pass
    # instead of making a second one over the test set (see final_evaluation).
    final_runtime = (
        FINAL_RUNTIME if runtime.device.type == "cpu" and runtime.channels_last else None
    )
    last_measured = None
    imports.wait()  # done before the steps: their times choose the threads
    # threads from measured step times, starting at the cores left idle meanwhile
    threads = ThreadTuner(config.threads, guess=first_guess.choose()) if first_guess else None
    try:
        for epoch in range(first, config.epochs + 1):
            steps = config.steps_per_epoch(x_train.shape[0])
            reporter.epoch_start(epoch, config.epochs, steps)
            result = train_epoch(
                network,
                optimizer,
                x_train,
                y_train,
                config,
                runtime,
                epoch=epoch,
                on_step=reporter.step,
                threads=threads,
                average=average,
                lookahead=lookahead,
            )
            used = threads.epoch_threads() if threads is not None else torch.get_num_threads()
            last = epoch == config.epochs  # its evaluation is the final one: the recipe's views
            measured = evaluate_epoch(
                judged,
                (x_train, y_train),
                (x_test, y_test),
                sample,
                runtime,
                seed=config.seed + epoch,
                tta_flip=config.tta_flip and last,
                tta_shift=config.tta_shift and last,
                on_batch=lambda done, total: reporter.phase(EVALUATE, done, total),
                measure_with=final_runtime if last else None,
                tests=tests,
                whole_test=last,  # the final evaluation: the whole test set
            )
            last_measured = measured
            row = {
                "epoch": epoch,
                **measured.row(),
                "running_loss": result.running_loss,
                "running_accuracy": result.running_accuracy,
                "seconds": result.seconds,
                "eval_seconds": measured.seconds,
                "images_per_second": x_train.shape[0] / result.seconds,
                "lr": optimizer.param_groups[0]["lr"],
                "threads": used,
            }
            state.history.append(row)
            state.epoch = epoch
            if config.keep == "best" and (
                state.best_epoch is None
                # the image alone in every epoch: the epochs compare like with like
                or measured.test.accuracy > state.history[state.best_epoch - 1]["test_accuracy"]
            ):
                state.best_epoch = epoch
                state.best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
            save_checkpoint(
                run.file(runs.CHECKPOINT),
                network,
                optimizer,
                state,
                average=averaged,
                slow=lookahead.state_dict() if lookahead is not None else None,
            )
            run.write_history(state.history)
            run.write_state("running", epoch)
            reporter.epoch_end(row)
            stopped = _early_stop_message(config, state.history)
            if stopped:
                reporter.note(stopped)
                break
        # Inside the try: Ctrl-C, a cancel or SIGTERM during the final evaluation or the
        # figures ends the run "interrupted" too; resuming it redoes only this part.
        reuse = (
            last_measured if last_measured is not None and state.epoch == config.epochs else None
        )
        _finish(run, judged, state, dataset, config, stopped, reporter, reuse)
    except KeyboardInterrupt:
        message = (
            f"interrupted after {state.epoch} of {config.epochs} epochs; "
            f"resume with: convlens train --resume {run.path}"
        )
        run.write_state("interrupted", state.epoch, message)
        raise Interrupted(message) from None
    except TrainingDiverged as err:
        run.write_state("diverged", state.epoch, str(err))
        raise
    return run


def _finish(
    run: Run,
    network: Network,
    state: TrainingState,
    dataset: Dataset,
    config: TrainConfig,
    stopped: str,
    reporter: Reporter,
    last_measured: EpochEvaluation | None = None,
) -> None:
    """Final weights, an fp32 evaluation, figures and the state, in that order.

    Reported as the ``finish`` phase: one unit per evaluation batch, one per figure.
    ``last_measured``: the last epoch's evaluation, reused when it already is the fp32
    evaluation of the weights being saved.
    """
    from convlens.plots.confusion import confusion_figure
    from convlens.plots.curves import curves_figure

    weights_epoch = state.best_epoch if config.keep == "best" else state.epoch
    reusable = (
        last_measured is not None
        and last_measured.runtime == FINAL_RUNTIME
        and weights_epoch == state.epoch
    )
    figures = 2
    batch = pass_batch(network, FINAL_RUNTIME, tuple(dataset.test_images.shape[1:]))
    total = (0 if reusable else -(-len(dataset.test_labels) // batch)) + figures
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        reporter.phase(FINISH, done, total)

    reporter.phase(FINISH, 0, total)
    if config.keep == "best" and state.best_state is not None:
        network.load_state_dict(state.best_state)
    network = network.to("cpu", memory_format=torch.contiguous_format).float()
    save_weights(network, run.file(runs.WEIGHTS), network.spec.to_dict())
    if reusable:
        final_test = last_measured.final_test  # with the recipe's views
        evaluation = Evaluation.of_predictions(
            final_test.predicted.cpu().numpy(),
            dataset.test_labels,
            dataset.class_names,
            loss=final_test.loss,
        )
    else:
        evaluation = evaluate_network(
            network,
            dataset.test_images,
            dataset.test_labels,
            dataset.class_names,
            runtime=FINAL_RUNTIME,
            tta_flip=config.tta_flip,
            tta_shift=config.tta_shift,
            batch_size=batch,
            on_batch=tick,
        )
    history = state.history
    final = history[-1]
    best = max(history, key=lambda r: r["test_accuracy"])
    # The last epoch's train figures with the views test_accuracy has, when it was
    # judged with them; otherwise (no views, or a run stopped early) the image alone.
    views = "tta_" if "tta_train_accuracy" in final else ""
    # rows from before the sample's cap used as many images as the test set has
    sample_images = int(
        final.get("train_images", min(len(dataset.train_labels), len(dataset.test_labels)))
    )
    test_views = view_count(flip=config.tta_flip, shift=config.tta_shift)
    metrics = {
        **evaluation.to_dict(),
        "test_views": test_views,
        "weights_epoch": state.best_epoch if config.keep == "best" else final["epoch"],
        "epochs_done": state.epoch,
        # measured at the end of the last epoch on a fixed sample of training images
        "train_accuracy": final.get(f"{views}train_accuracy"),
        "train_loss": final.get(f"{views}train_loss"),
        "train_views": (
            int(final["tta_views"])
            if views
            else 1
            if "train_images" in final
            else test_views  # rows from before every epoch was judged on the image alone
        ),
        "train_sample_images": sample_images if "train_accuracy" in final else None,
        # the test images behind each epoch's row, when a small run judged them on a
        # fixed sample (the figures above: the whole test set)
        "test_sample_images": (
            int(final["test_images"])
            if final.get("test_images", evaluation.count) < evaluation.count
            else None
        ),
        "running_accuracy": final.get("running_accuracy"),  # mean over the last epoch's steps
        # the per-epoch figures: the image alone (an older run's rows: the recipe's views),
        # on the test sample when there is one
        "best_test_accuracy": best["test_accuracy"],
        "best_epoch": int(best["epoch"]),
        "overfit_gap": (  # train - test of the last epoch, both with the same views
            final[f"{views}train_accuracy"] - final[f"{views}test_accuracy"]
            if "train_accuracy" in final
            else None
        ),
        "seconds_per_epoch": float(np.median([r["seconds"] for r in history])),
        "train_seconds": float(sum(r["seconds"] for r in history)),
        "eval_seconds": float(sum(r.get("eval_seconds", 0.0) for r in history)),
        "stopped_early": stopped or None,
        # what these figures come from: "full", or the sample, a subset, smoke mode
        "data": run.data_note.short,
        "data_caveat": run.data_note.caveat or None,
    }
    fileio.write_json(run.file(runs.METRICS_JSON), metrics)
    title = (
        network.spec.name if run.name == network.spec.name else f"{network.spec.name} ({run.name})"
    )
    fileio.write_figure(run.file(runs.CURVES), curves_figure(history, title))
    tick()
    fileio.write_figure(
        run.file(runs.CONFUSION),
        confusion_figure(evaluation.confusion, dataset.class_names, network.spec.name),
    )
    tick()
    run.write_state("stopped" if stopped else "complete", state.epoch, stopped)


def _early_stop_message(config: TrainConfig, history: list[dict[str, float]]) -> str:
    """The lesson's callback: after an epoch whose train accuracy reaches the target."""
    target = config.stop_at_accuracy
    if target is None or not history:
        return ""
    last = history[-1]
    # measured at the end of the epoch; a row from an older run has only its running mean
    reached = last.get("train_accuracy", last.get("running_accuracy", 0.0))
    if reached < target or last["epoch"] >= config.epochs:
        return ""
    return (
        f"reached {reached:.2%} train accuracy (target {target:.2%}) "
        f"after epoch {int(last['epoch'])}; stopping early"
    )


def _place(network: Network, runtime: Runtime) -> Network:
    network = network.to(runtime.device)
    if runtime.channels_last:
        network = network.to(memory_format=torch.channels_last)
    return network


def environment(runtime: Runtime, config: TrainConfig, dataset: Dataset) -> dict[str, Any]:
    import matplotlib

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "convlens": __version__,
        **runtime.describe(),
        # --threads, or the fastest count by measured step times, re-tried as the run
        # goes (metrics.csv "threads": the count of most of each epoch's steps)
        "threads_policy": "fixed" if config.threads else "fastest measured",
        "seed": config.seed,
        "dataset_source": dataset.source,
        "dataset_is_sample": dataset.is_sample,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
