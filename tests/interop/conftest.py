"""The committed Keras fixtures (scripts/make_keras_fixtures.py) and what Keras computed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "keras"


class KerasFixtures:
    """The fixture files and Keras' own outputs for eight real Fashion-MNIST test images."""

    folder = FIXTURES

    def path(self, name: str, suffix: str = ".keras") -> Path:
        return FIXTURES / f"{name}{suffix}"

    def outputs(self) -> dict[str, np.ndarray]:
        with np.load(FIXTURES / "outputs.npz", allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def probabilities(self, name: str) -> np.ndarray:
        """Keras' class probabilities (for the logits model, the softmax of its outputs:
        what convlens reports for a model that ends without one)."""
        out = self.outputs()[name].astype(np.float64)
        if name == "logits":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    def images(self) -> np.ndarray:
        """(8, 1, 28, 28) uint8."""
        return self.outputs()["images"][:, None]


@pytest.fixture(scope="session")
def keras_fixtures() -> KerasFixtures:
    return KerasFixtures()
