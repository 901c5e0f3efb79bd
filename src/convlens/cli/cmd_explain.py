"""convlens explain RUN (IMAGE | --index N): where the evidence for a class is.

Grad-CAM on the last conv layer laid over the image, the input gradients beside it, and
the top classes. For a model without conv layers (``dnn``) only the input gradients.
"""

from __future__ import annotations

import argparse

from convlens.cli.look_inside import add_look_options

_EPILOG = """\
examples:
  convlens explain runs/cnn1 --index 0
  convlens explain runs/cnn1 --index 23 --class "Ankle boot"
  convlens explain runs/cnn1 shoe.jpg
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="show which pixels a prediction rests on (Grad-CAM, gradients)",
        description="Explain one prediction: Grad-CAM over the image, input gradients, and "
        "the top classes, for a test image (--index) or your own image file.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="your own image file")
    parser.add_argument("--index", type=int, metavar="N", help="a test image instead, by index")
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="explain this class (name or number) instead of the predicted one",
    )
    parser.add_argument(
        "--layer", metavar="NAME", help="Grad-CAM on this layer (default: the last conv layer)"
    )
    add_look_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from convlens.cli.look_inside import (
        describe_test_image,
        figure_path,
        load_test_set,
        open_run,
        read_photo,
        save,
        slug,
    )
    from convlens.errors import OptionError
    from convlens.introspect import explain, resolve_class
    from convlens.plots.saliency import explain_figure

    if (args.image is None) == (args.index is None):
        raise OptionError("give one image: an IMAGE file or --index N of a test image")
    run_, network = open_run(args)
    names = run_.class_names
    target = None if args.class_name is None else resolve_class(args.class_name, names)
    true_class = None
    if args.image is not None:
        image, source = read_photo(run_, args.image, args.invert), args.image
        stem = slug(Path(args.image).stem)
    else:
        dataset = load_test_set(run_, args.data_dir)
        total = len(dataset.test_images)
        if not 0 <= args.index < total:
            raise OptionError(
                f"--index {args.index} is outside the test set; it has "
                f"{total:,} images (0 to {total - 1})"
            )
        image, source = dataset.test_images[args.index], describe_test_image(dataset, args.index)
        true_class = int(dataset.test_labels[args.index])
        stem = f"test{args.index}"
    result = explain(network, image, target, args.layer)
    suffix = "" if target is None else f"-{slug(names[target])}"
    path = figure_path(args.out, run_, f"explain-{stem}{suffix}.png")
    shown = Path(source).name if args.image else source
    save(explain_figure(result, names, shown, true_class=true_class), path)

    p = result.probabilities
    print(f"{source}: predicted {names[result.predicted]} {p[result.predicted]:.1%}")
    if result.cam_layer is None:
        print(f"model '{network.spec.name}' has no conv layer: input gradients only (no Grad-CAM)")
    else:
        print(
            f"Grad-CAM on {result.cam_layer} for '{names[result.target]}' ({p[result.target]:.1%}),"
            f" computed on {result.cam_source()}"
        )
    print(f"wrote {path}")
    return 0
