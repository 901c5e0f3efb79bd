"""One image through convlens' entry points, against ONNX Runtime alone, call by call.

Issue #12's goal 7 asks for <= 0.15 ms p50 for one image. What convlens adds to ONNX
Runtime's own time is Python work per call, a few microseconds each, far below the
noise of a shared machine between two separate runs. So every measurement here is
taken round-robin: each round calls every entry once, in turn, and times each call;
the medians over thousands of rounds saw the same load, and each is quoted as a ratio
to the raw session measured in the same rounds.

Entries (the lesson's ``cnn``, freshly initialised, one float or uint8 image):

- ``ort-one-image``: ``session.run`` on the ONNX Runtime session that convlens' engine
  answers one image with at that call (the network exported in memory, no spinning;
  since session 6 on one or two threads, as the idle cores allow; session 5: one;
  before: as many as torch): ONNX Runtime alone;
- ``logits``: ``convlens.models.inference.logits(network, x)``;
- ``predict_proba``: ``Network.predict_proba(x)`` (the notebook's call);
- ``predict_arrays``: ``convlens.predict_arrays(network, pixels)`` (uint8 in, NumPy out);
- ``look``: ``convlens.introspect.look(network, pixels)``, what the web's /api/predict
  computes once the picture is prepared;
- with ``--run RUN`` (a run folder of a 28x28 grey model): ``convlens.predict(RUN,
  pixels)``, the notebook's call on a run (since session 7 answered from the run and
  network kept while its files are the same), with the path and with one ``Run`` handle
  (``convlens.predict(Run)``: since session 11 its repeated calls check the weights file
  alone); also, in blocks of 20 calls a side, against ``predict_arrays`` on the network
  it keeps (``run_against_its_network``; absent on a checkout from before session 7).

``--steal BLOCKS`` measures what one image's calls take from a neighbour process that
spins on a core (its loops per second, against blocks without calls), for one thread,
two, two with ONNX Runtime's pool threads spinning, and convlens' own choice.

``--spinner`` keeps one core busy with a pure-Python neighbour process
(``bench/threads_under_load.py``'s) for the whole measurement, after a second for the
engine's reading of the idle cores to see it.

With ``--ideas`` it also times each change made for this goal against what it replaced
(a pair of callables per idea, alternating in blocks of 20 calls; the ratio is
after/before). Each time is also taken as the calling thread's CPU time, which a busy
machine inflates far less than the wall time (for work on that one thread).
The entry part only calls public functions, so the same command runs on an older
checkout for a before/after (each against its own raw session)::

    .venv/bin/python bench/inference_latency.py [--threads 2] [--rounds 10000] [--ideas]
        [--spinner] [--steal 20] [--run RUN] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from threads_under_load import spin  # the neighbour: one core of pure Python work

from convlens.introspect import look
from convlens.models import inference
from convlens.models.inputs import to_float_images
from convlens.models.network import build_network
from convlens.models.registry import get_preset
from convlens.predict import predict_arrays

Call = Callable[[], object]
IDEA_BLOCK = 20  # calls in a row of each side of an idea (some sides use other sessions)


def round_robin(calls: dict[str, Call], rounds: int, block: int = 1) -> dict[str, Samples]:
    """Each call's wall time and its calling thread's CPU time, every entry ``block``
    times in a row per round, in turn, each entry first as often as the others (after
    a warm-up). Blocks keep one entry's data warm in the caches when the entries run
    on different sessions; ``rounds`` counts calls of each entry."""
    for fn in calls.values():
        for _ in range(50):
            fn()
    samples = {name: Samples() for name in calls}
    order = list(calls.items())
    wall, cpu = time.perf_counter, time.thread_time
    for round_ in range(max(1, rounds // block)):
        at = round_ % len(order)
        for name, fn in order[at:] + order[:at]:
            for _ in range(block):
                start, start_cpu = wall(), cpu()
                fn()
                end_cpu, end = cpu(), wall()
                samples[name].wall.append(end - start)
                samples[name].cpu.append(end_cpu - start_cpu)
    return samples


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    # CPU time of the calling thread: what a call costs when it is not waiting for a core
    # (for work on that thread alone: a one-thread session, the Python around it)
    cpu: list[float] = field(default_factory=list)


def summary(samples: dict[str, Samples], reference: str) -> dict[str, dict[str, float]]:
    base = statistics.median(samples[reference].wall)
    base_cpu = statistics.median(samples[reference].cpu)
    return {
        name: {
            "p50_ms": 1e3 * statistics.median(values.wall),
            "p95_ms": 1e3 * float(np.percentile(values.wall, 95)),
            "ratio_to_" + reference: statistics.median(values.wall) / base,
            "cpu_p50_ms": 1e3 * statistics.median(values.cpu),
            "cpu_ratio_to_" + reference: statistics.median(values.cpu) / base_cpu,
        }
        for name, values in samples.items()
    }


def engine_session(network):
    """The ONNX Runtime session that answers one image for ``network`` in convlens'
    engine (in an older checkout: its only session, found in its forward's closure).
    The raw calls run on that same session, so that they find its weights as warm in
    the caches (a call right after another session's runs about 1.5x slower) and its
    pool threads as awake as convlens' own calls do."""
    import onnxruntime as ort

    forward = inference.engine_for(network, torch.rand(1, *network.input_shape))
    if hasattr(forward, "one_image"):
        return forward.one_image().session
    for cell in getattr(forward, "__closure__", None) or ():
        if isinstance(cell.cell_contents, ort.InferenceSession):
            return cell.cell_contents
    raise SystemExit(f"no ONNX Runtime session answers: {inference.engine_name(network)}")


def entries(network, x: torch.Tensor, pixels: np.ndarray) -> dict[str, Call]:
    images = x.numpy()
    for _ in range(3):  # the engine builds its session on the second call
        inference.logits(network, x)
    feed = {"images": images}
    forward = inference.engine_for(network, x)
    if hasattr(forward, "one_image_threads"):  # session 6 on: one or two threads
        one_image = {"ort-one-image": lambda: forward.one_image().session.run(None, feed)}
    else:
        session = engine_session(network)
        one_image = {"ort-one-image": lambda: session.run(None, feed)}
    return {
        **one_image,
        "logits": lambda: inference.logits(network, x),
        "predict_proba": lambda: network.predict_proba(x),
        "predict_arrays": lambda: predict_arrays(network, pixels),
        "look": lambda: look(network, pixels),
    }


def ideas(network, x: torch.Tensor, pixels: np.ndarray, threads: int) -> dict[str, dict[str, Call]]:
    """Each change for this goal: {"before": ..., "after": ...} on the same input."""
    import onnxruntime as ort

    from convlens.idle_cores import CpuSample, IdleCores
    from convlens.models.onnx_runtime import OnnxForward, _OneImage, export_onnx
    from convlens.models.weight_watch import WeightWatch

    model = export_onnx(network, tuple(network.input_shape))
    forward = OnnxForward(model, threads)
    one = forward.one_image(1)  # the one-thread session and its bound buffers
    two = forward.one_image(2)
    options = ort.SessionOptions()  # as _session's, but its pool threads spin between runs
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    options.log_severity_level = 3
    spinning = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    two_spinning = _OneImage(spinning, one.shape[1:], one.outputs[0].shape[1])
    idle = IdleCores(threads)
    images = x.numpy()
    watch = WeightWatch(network)
    modules = list(network.modules())

    def walk_key():  # the weights key of session 4: every module's dicts, each call
        key = []
        for module in modules:
            for tensors in (module._parameters.values(), module._buffers.values()):
                for t in tensors:
                    if t is None:
                        continue
                    if t.device.type != "cpu" or (
                        t.is_floating_point() and t.dtype != torch.float32
                    ):
                        return None
                    key.append((t.data_ptr(), t._version, getattr(t, "_steps", 0)))
        return tuple(key)

    def under_inference_mode():
        with torch.inference_mode():
            return forward(x)

    def torch_softmax():
        return forward(x).softmax(dim=-1)

    def to_cpu_float_eval():
        return network.to("cpu").float().eval()

    def torch_scaling():
        return torch.from_numpy(pixels).float().div_(255.0)

    from convlens.models import weight_watch

    stepped = build_network(get_preset("cnn").spec, (1, 28, 28), 10)
    stepped(torch.rand(2, 1, 28, 28)).sum().backward()  # every parameter has a gradient
    foreach_adam = torch.optim.Adam(stepped.parameters(), foreach=True)

    def every_step_hook():  # session 5's hook: every group of every optimizer
        params = [p for g in foreach_adam.param_groups for p in g["params"] if p.grad is not None]
        torch.autograd.graph.increment_version(params)

    return {
        "optimizer step hook on a foreach Adam step (every step -> fused only)": {
            "before": every_step_hook,
            "after": lambda: weight_watch._fused_step_writes(foreach_adam, (), {}),
        },
        "weights check (walk -> WeightWatch)": {
            "before": walk_key,
            "after": watch.unchanged,
        },
        "inference_mode around ONNX Runtime (on -> off)": {
            "before": under_inference_mode,
            "after": lambda: forward(x),
        },
        "probabilities (torch softmax -> in the graph)": {
            "before": torch_softmax,
            "after": lambda: forward.probabilities(x),
        },
        "one image threads (1 -> 2), IOBinding, no spinning": {
            "before": lambda: one.run(x, 1),
            "after": lambda: two.run(x, 1),
        },
        "one image on 2 threads, pool spinning (off -> on)": {
            "before": lambda: two.run(x, 1),
            "after": lambda: two_spinning.run(x, 1),
        },
        "the idle cores: a reading of /proc -> IdleCores.count (cached)": {
            "before": CpuSample.now,
            "after": idle.count,
        },
        "one image (session.run -> IOBinding), one thread": {
            "before": lambda: one.session.run(None, {"images": images}),
            "after": lambda: one.run(x, 0),
        },
        f"session threads for one image ({threads} -> 1), session.run": {
            "before": lambda: forward.session.run(None, {"images": images}),
            "after": lambda: one.session.run(None, {"images": images}),
        },
        "network.to(cpu).float().eval() -> on_cpu_in_eval": {
            "before": to_cpu_float_eval,
            "after": lambda: inference.on_cpu_in_eval(network, fp32=True),
        },
        "uint8 -> float (torch -> NumPy)": {
            "before": torch_scaling,
            "after": lambda: to_float_images(pixels),
        },
    }


def count_spins(stop, count) -> None:  # the spinner, counting its loops of work
    while not stop.is_set():
        sum(range(10_000))
        count.value += 1


def steal(network, x: torch.Tensor, threads: int, blocks: int, seconds: float = 0.25) -> dict:
    """What one image's calls take from a neighbour process that spins on a core: its
    loops per second while this process calls one image in a loop, in blocks of
    ``seconds`` per side (alternating: no calls, one thread, two threads, two spinning
    threads, convlens' own choice), as medians, with each side's p50/p95 per call."""
    import onnxruntime as ort

    from convlens.models.onnx_runtime import OnnxForward, _OneImage, export_onnx

    forward = OnnxForward(export_onnx(network, tuple(network.input_shape)), threads)
    one, two = forward.one_image(1), forward.one_image(2)
    options = ort.SessionOptions()  # as _session's, but its pool threads spin between runs
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    options.log_severity_level = 3
    spinning = ort.InferenceSession(forward._model, options, providers=["CPUExecutionProvider"])
    two_spinning = _OneImage(spinning, one.shape[1:], one.outputs[0].shape[1])
    sides: dict[str, Call | None] = {
        "no calls": None,
        "1 thread": lambda: one.run(x, 1),
        "2 threads": lambda: two.run(x, 1),
        "2 threads, spinning": lambda: two_spinning.run(x, 1),
        "convlens' choice": lambda: forward.one_image().run(x, 1),
    }
    count = multiprocessing.RawValue("q", 0)
    stop = multiprocessing.Event()
    neighbour = multiprocessing.Process(target=count_spins, args=(stop, count))
    neighbour.start()
    rates: dict[str, list[float]] = {name: [] for name in sides}
    calls: dict[str, list[float]] = {name: [] for name in sides}
    try:
        time.sleep(1.0)
        for block in range(blocks):
            order = list(sides.items())
            at = block % len(order)
            for name, fn in order[at:] + order[:at]:
                time.sleep(0.05)  # spinning pool threads of the side before wind down
                start, loops = time.perf_counter(), count.value
                end = start + seconds
                if fn is None:
                    time.sleep(seconds)
                else:
                    while (now := time.perf_counter()) < end:
                        fn()
                        calls[name].append(time.perf_counter() - now)
                rates[name].append((count.value - loops) / (time.perf_counter() - start))
    finally:
        stop.set()
        neighbour.join()
    quiet = statistics.median(rates["no calls"])
    return {
        name: {
            "neighbour_loops_per_s": statistics.median(rates[name]),
            "neighbour_share_of_no_calls": statistics.median(rates[name]) / quiet,
            **(
                {
                    "call_p50_us": 1e6 * statistics.median(calls[name]),
                    "call_p95_us": 1e6 * float(np.percentile(calls[name], 95)),
                }
                if calls[name]
                else {}
            ),
        }
        for name in sides
    }


def _kept_network(run: str):
    """The network ``convlens.predict(run)`` answers with (session 7's cache), or None on
    an older checkout. Timed against it in blocks of ``IDEA_BLOCK`` calls a side (as a
    notebook's loop calls it): in the rounds beside the entries' own network, each call
    meets the other network's weights cold in the caches."""
    from convlens import look

    loaded = getattr(look, "_LOADED", None)
    found = loaded.run(run) if loaded is not None and hasattr(loaded, "run") else None
    return getattr(found, "network", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--threads", type=int, default=2, help="torch's and ORT's threads")
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--ideas", action="store_true", help="also time each change, A/B")
    parser.add_argument("--json")
    parser.add_argument("--spinner", action="store_true", help="one core kept busy meanwhile")
    parser.add_argument("--run", help="a run folder: also time convlens.predict(RUN, image)")
    parser.add_argument(
        "--steal", type=int, default=0, metavar="BLOCKS",
        help="also measure what one image's calls take from a spinning neighbour",
    )  # fmt: skip
    args = parser.parse_args()
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,)) if args.spinner else None
    if spinner is not None:
        spinner.start()
        time.sleep(1.0)  # a window of the idle-core reading sees it
    try:
        measure(args)
    finally:
        if spinner is not None:
            stop.set()
            spinner.join()


def measure(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = build_network(get_preset(args.model).spec, (1, 28, 28), 10).eval()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (1, *network.input_shape), dtype=np.uint8)
    x = to_float_images(pixels)

    calls = entries(network, x, pixels)
    if args.run:
        import convlens
        from convlens.runs import Run

        handle = Run.open(args.run)  # a notebook's loop holds one Run
        calls["convlens.predict(run)"] = lambda: convlens.predict(args.run, pixels)
        calls["convlens.predict(Run)"] = lambda: convlens.predict(handle, pixels)
    reference = network.predict_proba(x).numpy()
    with torch.no_grad():
        eager = network(x).softmax(-1).numpy()
    results: dict[str, object] = {
        "entries": summary(round_robin(calls, args.rounds), "ort-one-image"),
        "engine": inference.engine_name(network),
        "max_abs_difference_from_eager": float(np.abs(reference - eager).max()),
        "threads": args.threads,
        "rounds": args.rounds,
        "spinner": args.spinner,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    kept = _kept_network(args.run) if args.run else None
    if kept is not None:  # the same network alone, in blocks: what predict(run) adds to it
        pair = {
            "predict_arrays(run's network)": lambda: predict_arrays(kept, pixels),
            "convlens.predict(run)": lambda: convlens.predict(args.run, pixels),
            "convlens.predict(Run)": lambda: convlens.predict(handle, pixels),
        }
        timed = round_robin(pair, args.rounds, block=IDEA_BLOCK)
        results["run_against_its_network"] = summary(timed, "predict_arrays(run's network)")
    forward = inference.engine_for(network, x)
    if hasattr(forward, "one_image_threads"):
        results["one_image_threads_at_end"] = forward.one_image_threads()
        results["busy_elsewhere_at_end"] = forward.idle.busy if forward.idle else None
    if args.ideas:
        measured = {}
        for idea, pair in ideas(network, x, pixels, args.threads).items():
            timed = summary(round_robin(pair, args.rounds, block=IDEA_BLOCK), "before")
            measured[idea] = {
                "before_us": 1e3 * timed["before"]["p50_ms"],
                "after_us": 1e3 * timed["after"]["p50_ms"],
                "after_over_before": timed["after"]["ratio_to_before"],
                "before_p95_us": 1e3 * timed["before"]["p95_ms"],
                "after_p95_us": 1e3 * timed["after"]["p95_ms"],
                "cpu_before_us": 1e3 * timed["before"]["cpu_p50_ms"],
                "cpu_after_us": 1e3 * timed["after"]["cpu_p50_ms"],
            }
        results["ideas"] = measured
    if args.steal:
        results["steal"] = steal(network, x, args.threads, args.steal)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
