"""The page's one-line recipe (util.js ``recipeText``) names the optimizer and schedule
fields a run changed from their defaults, and nothing for a recipe that keeps them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import convlens.web

UTIL = Path(convlens.web.__file__).parent / "static" / "util.js"


def recipe_text(train: dict) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = (
        f"import {{ recipeText }} from {json.dumps(UTIL.as_uri())};"
        f"console.log(recipeText({json.dumps(train)}));"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_sgd_with_its_own_norm_lr_and_schedule_shape_says_so() -> None:
    train = {
        "optimizer": "sgd", "momentum": 0.85, "batch_size": 256, "lr": 0.2,
        "schedule": "onecycle", "warmup": 0.1, "anneal": "linear", "final_lr_scale": 0,
        "weight_decay": 5e-4, "norm_lr_scale": 16, "label_smoothing": 0.1,
    }  # fmt: skip
    assert recipe_text(train) == (
        "SGD · batch 256 · lr 0.2 · one-cycle · momentum 0.85 · weight decay 0.0005 · "
        "warm-up 0.1 · linear decay · ending at lr ×0 · label smoothing 0.1 · "
        "batchnorm and biases at 16x lr"
    )


def test_the_defaults_add_nothing() -> None:
    train = {
        "optimizer": "adamw", "momentum": 0.9, "batch_size": 256, "lr": 0.004,
        "schedule": "onecycle", "warmup": 0.25, "anneal": "cosine", "final_lr_scale": 0.001,
        "weight_decay": 0.05, "norm_lr_scale": 1, "label_smoothing": 0.1,
    }  # fmt: skip
    assert recipe_text(train) == (
        "AdamW · batch 256 · lr 0.004 · one-cycle · weight decay 0.05 · label smoothing 0.1"
    )


def test_progressive_resizing_names_its_stages() -> None:
    train = {"optimizer": "adamw", "batch_size": 256, "lr": 0.004, "resize": "16:0.25,22:0.25"}
    assert recipe_text(train) == (
        "AdamW · batch 256 · lr 0.004 · first 16×16 for 25% of the epochs, then 22×22 for 25%"
    )
    assert recipe_text({**train, "resize": "20:0.3"}).endswith("first 20×20 for 30% of the epochs")


def test_lookahead_says_its_steps_and_share() -> None:
    train = {"optimizer": "adamw", "batch_size": 256, "lr": 0.004, "schedule": "onecycle",
             "lookahead": 5, "lookahead_alpha": 0.5}  # fmt: skip
    assert recipe_text(train) == (
        "AdamW · batch 256 · lr 0.004 · one-cycle · lookahead every 5 steps, keeping 0.5"
    )
