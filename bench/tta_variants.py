"""Judge trained runs with other sets of test-time views than the ones they use.

    .venv/bin/python bench/tta_variants.py --data-dir DIR RUN [RUN ...] [--json OUT]

A run trained with shifts and flips (``fast``) is judged with the image, its mirror and
two diagonal one-pixel shifts of both at half weight (``convlens.models.tta``). Other
sets cost nothing to train, so one trained network answers for them all: each view
below (the image moved by (dy, dx) pixels, zeros filling in, and its mirror) is
predicted once on all 10,000 test images, (N, 10) probabilities per view, and every
variant is a weighted mean of those probabilities, as ``predict_arrays`` averages its
views. The first variant is what the run itself is judged with, so the script checks
itself against ``predict_arrays(..., tta_flip=True, tta_shift=True)``. Prints one JSON
line per run (the accuracy of each variant) and the mean over the runs.
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from convlens.data.config import DataConfig
from convlens.models.inputs import to_float_images
from convlens.predict import predict_arrays
from convlens.runs import Run

Offset = tuple[int, int]  # (dy, dx) in pixels
DIAGONAL = ((-1, -1), (1, 1))  # fast's own shifted views
ANTI_DIAGONAL = ((-1, 1), (1, -1))
AXES = ((-1, 0), (1, 0), (0, -1), (0, 1))
DIAGONAL_2PX = ((-2, -2), (2, 2))
HORIZONTAL = ((0, -1), (0, 1))
VERTICAL = ((-1, 0), (1, 0))

# name: (shifted offsets, weight of each shifted view); every variant has the image and
# its mirror at weight 1, and each shifted view's mirror at the shifted view's weight.
VARIANTS: dict[str, tuple[tuple[Offset, ...], float]] = {
    "fast's own: mirror + 2 diagonal shifts at 0.5": (DIAGONAL, 0.5),
    "mirror only": ((), 0.0),
    "2 diagonal shifts at 0.25": (DIAGONAL, 0.25),
    "2 diagonal shifts at 1.0": (DIAGONAL, 1.0),
    "2 anti-diagonal shifts at 0.5": (ANTI_DIAGONAL, 0.5),
    "4 diagonal shifts at 0.5": (DIAGONAL + ANTI_DIAGONAL, 0.5),
    "4 diagonal shifts at 0.25": (DIAGONAL + ANTI_DIAGONAL, 0.25),
    "2 horizontal shifts at 0.5": (HORIZONTAL, 0.5),
    "2 vertical shifts at 0.5": (VERTICAL, 0.5),
    "4 axis shifts at 0.5": (AXES, 0.5),
    "4 axis shifts at 0.25": (AXES, 0.25),
    "8 neighbours at 0.25": (AXES + DIAGONAL + ANTI_DIAGONAL, 0.25),
    "8 neighbours at 0.5": (AXES + DIAGONAL + ANTI_DIAGONAL, 0.5),
    "2 diagonal shifts of 2 pixels at 0.5": (DIAGONAL_2PX, 0.5),
    "2 diagonal shifts of 1 and 2 pixels at 0.5": (DIAGONAL + DIAGONAL_2PX, 0.5),
}


def moved(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` (N, C, H, W) moved by (dy, dx) pixels (|dy|, |dx| <= 2), zeros filling in."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (2, 2, 2, 2))
    return padded[..., 2 - dy : 2 - dy + h, 2 - dx : 2 - dx + w].contiguous()


def view_probabilities(network, images: np.ndarray, batch_size: int = 500) -> dict:
    """{(dy, dx, mirrored): (N, K) probabilities} for every view any variant uses."""
    offsets = {(0, 0)} | {o for shifts, _ in VARIANTS.values() for o in shifts}
    found: dict[tuple[int, int, bool], list[np.ndarray]] = {}
    for start in range(0, len(images), batch_size):
        x = to_float_images(images[start : start + batch_size])
        for dy, dx in sorted(offsets):
            view = moved(x, dy, dx)
            for mirrored in (False, True):
                shown = view.flip(-1) if mirrored else view
                found.setdefault((dy, dx, mirrored), []).append(
                    network.predict_proba(shown).numpy()
                )
    return {key: np.concatenate(parts) for key, parts in found.items()}


def variant_accuracy(views: dict, labels: np.ndarray, shifts, weight: float) -> float:
    """Test accuracy of the weighted mean of one variant's views."""
    total = views[(0, 0, False)] + views[(0, 0, True)]
    for dy, dx in shifts:
        total = total + weight * (views[(dy, dx, False)] + views[(dy, dx, True)])
    return float((total.argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--json", default=None, help="append the JSON lines to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = DataConfig(data_dir=args.data_dir, download=False).load(progress=False)
    labels = np.asarray(dataset.test_labels)
    lines = []
    for ref in args.runs:
        network = Run.open(ref).network()
        views = view_probabilities(network, dataset.test_images)
        accuracy = {
            name: round(variant_accuracy(views, labels, shifts, weight), 4)
            for name, (shifts, weight) in VARIANTS.items()
        }
        own = predict_arrays(network, dataset.test_images, tta_flip=True, tta_shift=True)
        own_accuracy = float((own.argmax(1) == labels).mean())
        if abs(own_accuracy - accuracy[next(iter(VARIANTS))]) > 2e-4:  # ties may differ
            first = accuracy[next(iter(VARIANTS))]
            raise SystemExit(
                f"{ref}: fast's own views give {first:.4f} here, "
                f"{own_accuracy:.4f} in predict_arrays"
            )
        alone = float((views[(0, 0, False)].argmax(1) == labels).mean())
        lines.append({"run": str(ref), "alone": round(alone, 4), "variants": accuracy})
        print(json.dumps(lines[-1]), flush=True)
    if len(lines) > 1:
        mean = {
            name: round(statistics.mean(line["variants"][name] for line in lines), 5)
            for name in VARIANTS
        }
        lines.append({"runs": args.runs, "mean_variants": mean})
        print(json.dumps(lines[-1]))
    if args.json:
        with open(args.json, "a") as out:
            out.writelines(json.dumps(line) + "\n" for line in lines)


if __name__ == "__main__":
    main()
