"""convlens against the lesson's tf.keras code, in alternating rounds, optionally under load.

Each round trains the lesson's ``cnn`` (batch 32, Adam 1e-3) for two epochs of ``--images``
images with each engine in turn, each in its own process: tf.keras (``bench/keras_lesson.py``
run by ``--keras-python``, the interpreter of TensorFlow's own environment) and convlens'
default path (``bench/train_throughput.py --engines convlens-auto``). The second epoch is
the one compared: tf.keras' first traces its graph, and convlens' first warms its kernels.
Engines alternate so a drifting machine hurts both alike; the ratio is per round::

    .venv/bin/python bench/side_by_side.py --data-dir DIR \
        --keras-python bench/.venv-tf/bin/python [--images 20000] [--rounds 3] \
        [--isa native|avx2] [--spinners 0] [--json out.json]

``--isa avx2`` restricts both engines to AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2`` for
PyTorch, ``ONEDNN_MAX_CPU_ISA=AVX2`` for oneDNN in both): a laptop without AVX-512,
emulated. ``--spinners N`` keeps N cores busy with pure-Python neighbours, started before
the first round and stopped after the last (issue #12, goal 2: the ratio under load).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from threads_under_load import spin  # the neighbour: one core of pure Python work

HERE = Path(__file__).resolve().parent
AVX2_ONLY = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def keras_rate(python: str, data_dir: str, images: int, env: dict[str, str]) -> float:
    """images/s of tf.keras' second epoch."""
    command = [python, str(HERE / "keras_lesson.py"), "--data-dir", data_dir,
               "--model", "cnn", "--epochs", "2", "--images", str(images)]  # fmt: skip
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"][-1]


def convlens_rate(data_dir: str, images: int, env: dict[str, str]) -> tuple[float, int]:
    """images/s of convlens' second epoch (the default path, threads chosen as train does)
    and the thread count that ran most of its steps."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "throughput.json"
        command = [sys.executable, str(HERE / "train_throughput.py"), "--data-dir", data_dir,
                   "--models", "cnn", "--engines", "convlens-auto", "--repeats", "2",
                   "--images", str(images), "--json", str(result)]  # fmt: skip
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        measured = json.loads(result.read_text())["cnn"]["convlens-auto"]
    return images / measured["seconds"][-1], measured["threads"][-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--keras-python", required=True, help="python of the TensorFlow env")
    parser.add_argument("--images", type=int, default=20000, help="training images per epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--spinners", type=int, default=0, help="cores kept busy meanwhile")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    env = {**os.environ, **(AVX2_ONLY if args.isa == "avx2" else {})}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,)) for _ in range(args.spinners)]
    rounds = []
    try:
        for process in spinners:
            process.start()
        for number in range(1, args.rounds + 1):
            keras = keras_rate(args.keras_python, args.data_dir, args.images, env)
            ours, threads = convlens_rate(args.data_dir, args.images, env)
            rounds.append({"tf_keras": keras, "convlens": ours, "ratio": ours / keras,
                           "convlens_threads": threads})  # fmt: skip
            print(f"round {number} ({args.isa}, {args.spinners} spinner(s)): tf.keras "
                  f"{keras:,.0f} images/s, convlens {ours:,.0f} ({threads} thread(s)), "
                  f"{ours / keras:.2f}x", flush=True)  # fmt: skip
    finally:
        stop.set()
        for process in spinners:
            process.join(10)
            if process.is_alive():
                process.terminate()
    summary = {
        "isa": args.isa,
        "spinners": args.spinners,
        "images": args.images,
        "cpu_flags": cpu_flags(),
        "load_average_after": os.getloadavg(),
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_tf_keras": statistics.median(r["tf_keras"] for r in rounds),
        "median_convlens": statistics.median(r["convlens"] for r in rounds),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")


def cpu_flags() -> list[str]:
    """The vector ISA flags that decide the kernels (from /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))


if __name__ == "__main__":
    main()
