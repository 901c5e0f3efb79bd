"""The lesson's exact tf.keras code, timed per epoch: the reference convlens is measured against.

Runs in its own environment (TensorFlow must not share one with the product)::

    python3 -m venv bench/.venv-tf && bench/.venv-tf/bin/pip install tensorflow-cpu==2.21.0
    bench/.venv-tf/bin/python bench/keras_lesson.py --data-dir DIR --model cnn --epochs 5

Prints one JSON object: seconds and images/s per epoch, train and test accuracy. The data
is read from the four IDX files (keras.datasets would download them). ``--save PREFIX``
also saves the trained model as ``PREFIX.keras`` and ``PREFIX.h5``: the files that
``convlens import`` is checked against (README, "Bring your own model").
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(folder: Path):
    def pick(stem: str) -> np.ndarray:
        matches = sorted(folder.glob(stem + "*"))
        return read_idx(matches[0])

    return (
        pick("train-images-idx3-ubyte"),
        pick("train-labels-idx1-ubyte"),
        pick("t10k-images-idx3-ubyte"),
        pick("t10k-labels-idx1-ubyte"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--model", choices=("cnn", "dnn"), default="cnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--images", type=int, default=60000, help="the first N training images")
    parser.add_argument(
        "--seed", type=int, help="seed Python, NumPy and TensorFlow (the lesson's code does not)"
    )
    parser.add_argument(
        "--save",
        metavar="PREFIX",
        type=Path,
        help="also save the trained model as PREFIX.keras and PREFIX.h5 (for convlens import)",
    )
    args = parser.parse_args()

    import tensorflow as tf

    if args.seed is not None:
        tf.keras.utils.set_random_seed(args.seed)

    training_images, training_labels, test_images, test_labels = load(args.data_dir)
    # The lesson's code from here on (reshape to NHWC, scale to 0..1).
    training_images = training_images[: args.images].reshape(-1, 28, 28, 1) / 255.0
    training_labels = training_labels[: args.images]
    test_images = test_images.reshape(10000, 28, 28, 1) / 255.0
    if args.model == "cnn":
        model = tf.keras.models.Sequential(
            [
                tf.keras.layers.Input((28, 28, 1)),
                tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
                tf.keras.layers.MaxPooling2D(2, 2),
                tf.keras.layers.Conv2D(64, (3, 3), activation="relu"),
                tf.keras.layers.MaxPooling2D(2, 2),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
    else:
        model = tf.keras.models.Sequential(
            [
                tf.keras.layers.Input((28, 28, 1)),
                tf.keras.layers.Flatten(),
                tf.keras.layers.Dense(128, activation="relu"),
                tf.keras.layers.Dense(10, activation="softmax"),
            ]
        )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.start)

    seconds: list[float] = []
    history = model.fit(
        training_images,
        training_labels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[EpochTimer()],
        verbose=0,
    )
    test_loss, test_accuracy = model.evaluate(test_images, test_labels, verbose=0)
    if args.save:
        model.save(f"{args.save}.keras")
        model.save(f"{args.save}.h5")  # the legacy HDF5 format (Keras warns; that is the point)
    print(
        json.dumps(
            {
                "engine": f"tf.keras {tf.__version__}",
                "model": args.model,
                "params": model.count_params(),
                "seed": args.seed,
                "seconds_per_epoch": seconds,
                "images_per_second": [len(training_images) / s for s in seconds],
                "train_accuracy": float(history.history["accuracy"][-1]),
                "test_accuracy": float(test_accuracy),
                "test_loss": float(test_loss),
            }
        )
    )


if __name__ == "__main__":
    main()
