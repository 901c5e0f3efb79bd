"""convlens journey RUN: one filter's feature map after each conv and pool layer.

The lesson's figure: three test images of one class (0, 23 and 28 by default), filter
1, columns conv2d 26x26, max_pooling2d 13x13, conv2d_1 11x11, max_pooling2d_1 5x5. When
filter 1 is silent somewhere on these images (a dead filter is common in conv2d_1) the
first filter live in every layer is followed instead, and the printout says why. Dead
filters (silent on every one of the first 256 test images) are marked in red. With
``--all-filters`` it shows every map of one layer for one image instead.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convlens.cli.look_inside import add_look_options

_EPILOG = """\
examples:
  convlens journey runs/cnn1                          the lesson's shoes 0, 23, 28, a live filter
  convlens journey runs/cnn1 --class "Ankle boot" --count 4 --filter 7
  convlens journey runs/cnn1 --images 1,2,3 --layer conv2d,conv2d_1
  convlens journey runs/cnn1 --all-filters --layer conv2d --images 23
  convlens journey runs/cnn1 --image shoe.jpg
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "journey",
        help="follow one filter through the conv and pool layers",
        description="Draw one filter's feature map after every conv and pool layer for a "
        "few images (rows), or with --all-filters every map of one layer for one image.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    which = parser.add_argument_group("which images (default: test images 0,23,28)")
    which.add_argument("--images", metavar="I,J,K", help="test-set indices, e.g. 0,23,28")
    which.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="the first --count test images of this class (name or number)",
    )
    which.add_argument("--count", type=int, default=3, metavar="N", help="images with --class (3)")
    which.add_argument(
        "--image",
        dest="photos",
        metavar="FILE",
        action="append",
        help="your own image file instead (repeat for more rows)",
    )
    parser.add_argument(
        "--filter",
        type=int,
        default=None,
        metavar="K",
        help="which filter index to follow in every layer (each layer's filter K is a "
        "different filter; default: the lesson's 1 when it is live in every layer, else "
        "the first filter that is)",
    )
    parser.add_argument(
        "--all-filters",
        action="store_true",
        help="every filter's map of --layer for the first image",
    )
    parser.add_argument(
        "--layer",
        metavar="NAME",
        help="the layers to show (comma-separated; default every conv and "
        "pool layer); with --all-filters one layer (default the first conv)",
    )
    add_look_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.cli.look_inside import open_run, save

    run_, network = open_run(args)
    chosen = _inputs(args, run_)
    if args.all_filters:
        figure, path, lines = _all_filters(args, run_, network, chosen)
    else:
        figure, path, lines = _journey(args, run_, network, chosen)
    save(figure, path)
    print("\n".join(lines))
    print(f"wrote {path}")
    return 0


@dataclass(frozen=True)
class _Chosen:
    images: Any  # (N, C, H, W) uint8
    labels: list[str]  # for people: "test #23 (Ankle boot)", "shoe.jpg"
    ids: list[str]  # for file names: "test23", "shoe"
    stem: str  # the selection in a file name: "", "ankle-boot", "test1-2-3", "shoe"
    reference: Any  # (M, C, H, W) uint8 test images that judge dead filters, or None


def _inputs(args: argparse.Namespace, run_: Any) -> _Chosen:
    import numpy as np

    from convlens.cli.look_inside import (
        describe_test_image,
        load_test_set,
        read_photo,
        reference_images,
        slug,
    )
    from convlens.errors import OptionError
    from convlens.introspect import parse_indices, pick_images

    if args.photos:
        if args.images or args.class_name:
            raise OptionError(
                "give your own images with --image, or test images with --images/--class, not both"
            )
        images = np.stack([read_photo(run_, p, args.invert) for p in args.photos])
        ids = [slug(Path(p).stem) for p in args.photos]
        reference = reference_images(run_, args.data_dir)
        return _Chosen(images, [_short(p) for p in args.photos], ids, ids[0], reference)
    indices = parse_indices(args.images) if args.images else None
    if args.count != 3 and args.class_name is None:
        raise OptionError("--count goes with --class, e.g. --class 'Ankle boot' --count 3")
    dataset = load_test_set(run_, args.data_dir)
    chosen = pick_images(dataset, args.class_name, args.count, indices)
    if args.class_name is not None:
        stem = slug(dataset.class_names[int(dataset.test_labels[chosen[0]])])
    elif indices is not None:
        stem = "test" + "-".join(str(i) for i in chosen[:6])
    else:
        stem = ""
    return _Chosen(
        dataset.test_images[chosen],
        [describe_test_image(dataset, i) for i in chosen],
        [f"test{i}" for i in chosen],
        stem,
        reference_images(run_, args.data_dir, dataset),
    )


def _journey(
    args: argparse.Namespace, run_: Any, network: Any, chosen: _Chosen
) -> tuple[Any, Any, list[str]]:
    from convlens.cli.look_inside import figure_path
    from convlens.introspect.liveness import follow_filter
    from convlens.plots.journey import journey_figure

    layers = _layer_list(args.layer)
    result = follow_filter(
        network, chosen.images, args.filter, layers, run_.class_names, chosen.reference
    )
    k, reason = result.filter_index, result.reason
    title = f"Filter {k} of each layer, through the layers of {run_.name}"
    figure = journey_figure(result, chosen.labels, title)
    name = f"journey-filter{k}" + (f"-{chosen.stem}" if chosen.stem else "") + ".png"
    lines = [result.shape_line()]
    if reason:
        lines.append(f"following filter {k}: {reason}")
    for layer in result.dead:
        lines.append(
            f"filter {k} of {layer} is dead: 0 on every one of {result.reference_count:,} "
            "test images (choose another with --filter)"
        )
    lines += [
        f"{label}: predicted {result.predicted_name(i)} {result.probability[i]:.1%}"
        for i, label in enumerate(chosen.labels)
    ]
    return figure, figure_path(args.out, run_, name), lines


def _all_filters(
    args: argparse.Namespace, run_: Any, network: Any, chosen: _Chosen
) -> tuple[Any, Any, list[str]]:
    from convlens.cli.look_inside import figure_path
    from convlens.errors import OptionError
    from convlens.introspect import feature_maps, journey_layer_names

    layers = _layer_list(args.layer)
    if layers and len(layers) > 1:
        raise OptionError("--all-filters shows one layer; give one --layer NAME, e.g. conv2d")
    if not layers:
        layers = journey_layer_names(network)[:1]
        if not layers:
            raise OptionError(
                f"model '{network.spec.name}' has no conv or pool layer, so it "
                "has no feature maps; try: convlens explain RUN --index 0"
            )
    layer = layers[0]
    image, label = chosen.images[:1], chosen.labels[0]  # (1, C, H, W)
    maps = feature_maps(network, image, [layer])[layer][0]  # (C, H, W)
    dead = None
    if chosen.reference is not None:
        from convlens.introspect.liveness import dead_filters

        dead = dead_filters(network, chosen.reference, [layer])[layer]  # (C,) bool
    from convlens.plots.journey import layer_maps_figure
    from convlens.predict import predict_arrays

    probabilities = predict_arrays(network, image)[0]  # (K,)
    k = int(probabilities.argmax())
    guess = f"{_class_name(run_, k)} {probabilities[k]:.1%}"
    figure = layer_maps_figure(
        maps,
        layer,
        image[0],
        f"{label}\npredicted: {guess}",
        dead=dead,
        reference_count=0 if chosen.reference is None else len(chosen.reference),
    )
    name = f"maps-{layer}-{chosen.ids[0]}.png"
    lines = [f"{label}: {layer} {maps.shape[1]}x{maps.shape[2]}x{maps.shape[0]}, predicted {guess}"]
    if dead is not None and dead.any():
        listed = ", ".join(str(i) for i in dead.nonzero()[0])
        lines.append(
            f"dead filters of {layer} (0 on all {len(chosen.reference):,} test images): {listed}"
        )
    if len(chosen.images) > 1 and (args.images or args.class_name or args.photos):
        lines.append(f"(--all-filters shows one image, the first: {label})")
    return figure, figure_path(args.out, run_, name), lines


def _layer_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [part.strip() for part in text.split(",") if part.strip()] or None


def _class_name(run_: Any, k: int) -> str:
    names = run_.class_names
    return names[k] if k < len(names) else str(k)


def _short(path: str) -> str:
    name = Path(path).name
    return name if len(name) <= 24 else name[:21] + "..."
