"""Smoke mode: ``CONVLENS_SMOKE=1`` makes every training tiny, so notebooks, README
examples and CI run in seconds.

It caps what a training asks for, even what was given explicitly (``epochs=20`` becomes
1): a notebook under test must not train for real because one cell says so. It says so
every time (a :class:`~convlens.notices.SmokeModeWarning`, the reporter's note) and the
run records it (``config.json``'s ``dataset.smoke``), so a capped run never passes for a
real one.
"""

from __future__ import annotations

import os

from convlens.recipe import TrainConfig

ENV_SMOKE = "CONVLENS_SMOKE"

#: The caps: one epoch on a stratified 256 train / 128 test images (seeded): eight steps.
SMOKE_EPOCHS = 1
SMOKE_TRAIN_IMAGES = 256
SMOKE_TEST_IMAGES = 128


def smoke_mode() -> bool:
    """True when ``$CONVLENS_SMOKE`` is set to anything but "", "0", "false" or "no"."""
    return os.environ.get(ENV_SMOKE, "").strip().lower() not in ("", "0", "false", "no")


def cap(config: TrainConfig) -> tuple[TrainConfig, str | None]:
    """``config`` with smoke mode's caps, and the sentence that says what changed.

    Outside smoke mode, or for a config already within the caps (compare and sweep cap
    once and say it once, then train each run with the capped config): ``(config,
    None)``.
    """
    if not smoke_mode():
        return config, None
    capped = config.replace(
        epochs=min(config.epochs, SMOKE_EPOCHS),
        train_subset=min(config.train_subset or SMOKE_TRAIN_IMAGES, SMOKE_TRAIN_IMAGES),
        test_subset=min(config.test_subset or SMOKE_TEST_IMAGES, SMOKE_TEST_IMAGES),
    )
    if capped == config:
        return config, None
    note = (
        f"{ENV_SMOKE}=1: training capped to {capped.epochs} epoch (asked {config.epochs}) on "
        f"at most {capped.train_subset:,} train / {capped.test_subset:,} test images; the "
        "figures are a smoke test, not a result"
    )
    return capped, note
