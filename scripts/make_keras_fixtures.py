"""Build the small Keras models that tests/interop checks convlens' importer against.

Needs TensorFlow (CI does not have it; the files this writes are committed)::

    python3 -m venv bench/.venv-tf && bench/.venv-tf/bin/pip install tensorflow-cpu==2.21.0
    bench/.venv-tf/bin/python scripts/make_keras_fixtures.py

For each model it writes ``NAME.keras`` and ``NAME.h5`` into tests/interop/fixtures/keras,
and into ``outputs.npz`` Keras' own outputs (``NAME``) for eight real Fashion-MNIST test
images (``images``, uint8 (8, 28, 28), from the embedded sample). Each model covers
layers and traps of the importer:

* ``lesson``: the lesson's CNN shape (Conv2D relu, MaxPooling2D, twice, Flatten, Dense,
  Dense softmax), narrower so the files stay small: the NHWC flatten permutation;
* ``strided``: 'same' convolutions with stride 2 on even and odd maps, an even and a
  non-square kernel (TensorFlow pads the odd zero bottom/right), BatchNormalization with
  epsilon 1e-3 and small running variances (where epsilon matters), a dense layer after a
  batchnorm after Flatten (the permutation must reach the batchnorm too);
* ``functional``: a functional chain fed raw 0..255 pixels: Input (28, 28), Reshape,
  Rescaling(1/255), a linear Conv2D, BatchNormalization, ReLU, AveragePooling2D, a
  tanh Conv2D without bias, GlobalAveragePooling2D, Dense gelu, Dropout, Dense, Softmax;
* ``logits``: activations as layers of their own (ELU after pooling), a pool with its own
  stride, sigmoid and silu, and no softmax: the model returns logits;
* ``globalmax``: a linear Conv2D, BatchNormalization and ReLU, then GlobalMaxPooling2D
  of a tanh Conv2D's 5x5 maps (convlens' gmp);
* ``unsupported``: a DepthwiseConv2D (the importer must refuse it by name);
* ``branched``: a residual Add (not a single chain: refused).

Weights are random but realistic (He-scaled, nonzero biases, batchnorm statistics drawn
away from 0 and 1), so a wrong layout or order changes the outputs by far more than 1e-5.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "interop" / "fixtures" / "keras"
SAMPLE = ROOT / "src" / "convlens" / "data" / "sample" / "fashion-mnist"


def sample_images(count: int = 8) -> np.ndarray:
    raw = gzip.decompress((SAMPLE / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    return images[:count].copy()


def models(keras):
    L = keras.layers

    def lesson():
        return keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(8, (3, 3), activation="relu"),
                L.MaxPooling2D(2, 2),
                L.Conv2D(8, (3, 3), activation="relu"),
                L.MaxPooling2D(2, 2),
                L.Flatten(),
                L.Dense(16, activation="relu"),
                L.Dense(10, activation="softmax"),
            ],
            name="lesson",
        )

    def strided():
        return keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(6, 3, strides=2, padding="same", activation="relu"),  # 28 -> 14
                L.Conv2D(6, 4, strides=1, padding="same"),  # even kernel: pads 1 top, 2 bottom
                L.BatchNormalization(),
                L.Activation("relu"),
                L.Conv2D(8, (3, 2), strides=2, padding="same", activation="relu"),  # 14 -> 7
                L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),  # odd map: 7 -> 4
                L.Flatten(),
                L.BatchNormalization(epsilon=1e-3),
                L.Dense(10, activation="softmax"),
            ],
            name="strided",
        )

    def functional():
        inputs = keras.Input((28, 28))
        x = L.Reshape((28, 28, 1))(inputs)
        x = L.Rescaling(1.0 / 255)(x)
        x = L.Conv2D(6, 3, padding="same")(x)
        x = L.BatchNormalization(momentum=0.9)(x)
        x = L.ReLU()(x)
        x = L.AveragePooling2D(2)(x)
        x = L.Conv2D(8, 5, activation="tanh", use_bias=False)(x)
        x = L.GlobalAveragePooling2D()(x)
        x = L.Dense(12, activation="gelu")(x)
        x = L.Dropout(0.25)(x)
        x = L.Dense(10)(x)
        outputs = L.Softmax()(x)
        return keras.Model(inputs, outputs, name="functional")

    def logits():
        return keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(4, 5),
                L.MaxPooling2D(pool_size=3, strides=2),
                L.Activation("elu"),
                L.Conv2D(6, 3, activation="sigmoid"),
                L.Flatten(),
                L.Dense(8, activation="silu"),
                L.Dense(10),
            ],
            name="logits",
        )

    def globalmax():
        return keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(6, 3, activation="relu"),
                L.MaxPooling2D(2),  # 26 -> 13
                L.Conv2D(8, 3, strides=2, padding="same"),  # 13 -> 7
                L.BatchNormalization(),
                L.ReLU(),
                L.Conv2D(12, 3, activation="tanh"),  # 7 -> 5; logits of a few units, not 30
                L.GlobalMaxPooling2D(),
                L.Dense(10, activation="softmax"),
            ],
            name="globalmax",
        )

    def unsupported():
        return keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                L.Conv2D(4, 3, activation="relu"),
                L.DepthwiseConv2D(3),
                L.GlobalAveragePooling2D(),
                L.Dense(10, activation="softmax"),
            ],
            name="unsupported",
        )

    def branched():
        inputs = keras.Input((28, 28, 1))
        x = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        y = L.Conv2D(4, 3, padding="same")(x)
        x = L.Add()([x, y])
        x = L.GlobalAveragePooling2D()(x)
        outputs = L.Dense(10, activation="softmax")(x)
        return keras.Model(inputs, outputs, name="branched")

    return {
        "lesson": (lesson, 255.0),
        "strided": (strided, 255.0),
        "functional": (functional, 1.0),  # fed raw pixels: the model rescales
        "logits": (logits, 255.0),
        "unsupported": (unsupported, 255.0),
        "branched": (branched, 255.0),
        "globalmax": (globalmax, 255.0),  # last: the others' random weights stay as they were
    }


def randomise(model, rng: np.random.Generator) -> None:
    """Realistic random weights: He-scaled kernels, small biases, batchnorm statistics
    away from their initial 0 and 1 (epsilon 1e-3 against variances of 1e-3..0.1)."""
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            name = variable.path.split("/")[-1]
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, np.sqrt(2.0 / fan_in), shape))
            elif name == "moving_variance":
                values.append(rng.uniform(1e-3, 0.1, shape))
            elif name == "moving_mean":
                values.append(rng.normal(0, 0.3, shape))
            elif name == "gamma":
                values.append(rng.uniform(0.5, 1.5, shape))
            else:  # bias, beta
                values.append(rng.normal(0, 0.1, shape))
        if values:
            layer.set_weights([v.astype(np.float32) for v in values])


def main() -> None:
    import keras

    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(13)
    images = sample_images()
    outputs: dict[str, np.ndarray] = {"images": images}
    for name, (build, divide_by) in models(keras).items():
        keras.utils.set_random_seed(13)
        model = build()
        randomise(model, rng)
        x = images.reshape(-1, 28, 28, 1).astype(np.float32) / divide_by
        if name == "functional":
            x = x.reshape(-1, 28, 28)
        outputs[name] = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
        model.save(OUT / f"{name}.keras")
        model.save(OUT / f"{name}.h5")
        print(f"{name}: {model.count_params():,} params, output {outputs[name].shape}")
    np.savez_compressed(OUT / "outputs.npz", **outputs)
    (OUT / "VERSIONS.txt").write_text(
        f"made by scripts/make_keras_fixtures.py with keras {keras.__version__}\n"
    )


if __name__ == "__main__":
    main()
