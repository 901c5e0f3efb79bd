"""convlens filters RUN: the kernels a conv layer learned, one small grid per filter.

Next to the lesson's hand-made kernels (``convlens filter --list-kernels``) these are the
ones gradient descent found: blue negative, red positive, white 0.
"""

from __future__ import annotations

import argparse

from convlens.cli.look_inside import add_look_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "filters",
        help="show the kernels a conv layer learned",
        description="Draw every kernel of one conv layer of a trained run (default: the first "
        "conv layer) on one colour scale centred on 0.",
        epilog="example: convlens filters runs/cnn1 --layer conv2d_1",
    )
    parser.add_argument("run_ref", metavar="RUN", help="run folder or name")
    parser.add_argument("--layer", metavar="NAME", help="a conv layer (default: the first)")
    parser.add_argument(
        "--channel",
        metavar="C",
        default="mean",
        help="for layers with several input channels: one channel's kernels "
        "(0, 1, ...) or their mean (default)",
    )
    add_look_options(
        parser, photos=False, data_dir_help="read the test set (to find dead filters) from here"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from convlens.cli.look_inside import figure_path, open_run, reference_images, save
    from convlens.introspect import learned_filters
    from convlens.introspect.liveness import dead_filters
    from convlens.look import FiltersView
    from convlens.plots.learned_filters import filters_figure

    run_, network = open_run(args)
    layer = args.layer or (network.conv_layer_names() or [None])[0]
    weights = learned_filters(network, layer)  # (F, C, k, k)
    channels = weights.shape[1]
    channel = _channel(args.channel, channels)
    reference = reference_images(run_, args.data_dir)
    dead = None if reference is None else dead_filters(network, reference, [layer])[layer]
    path = figure_path(args.out, run_, f"filters-{layer}.png")
    figure = filters_figure(
        weights,
        layer,
        channel,
        dead=dead,
        reference_count=0 if reference is None else len(reference),
    )
    save(figure, path)
    print(FiltersView(weights, layer, channel))  # the notebook's line: layer, kernels, range
    if channels > 1:
        shown = weights.mean(axis=1) if channel == "mean" else weights[:, channel]
        what = (
            f"the mean over the {channels} input channels"
            if channel == "mean"
            else f"input channel {channel} of {channels}"
        )
        print(
            f"drawn: {what} (from {shown.min():.3g} to {shown.max():.3g}); "
            f"--channel 0..{channels - 1} draws one input channel's kernels"
        )
    if dead is not None:
        listed = ", ".join(str(i) for i in dead.nonzero()[0]) or "none"
        print(f"dead filters (output 0 on all {len(reference):,} test images): {listed}")
    print(f"wrote {path}")
    return 0


def _channel(text: str, channels: int) -> int | str:
    from convlens.errors import OptionError

    if text.strip().lower() == "mean":
        return "mean"
    if not text.strip().isdigit() or int(text) >= channels:
        raise OptionError(
            f"--channel {text!r} is not valid; use mean or an input channel from 0 to "
            f"{channels - 1}"
        )
    return int(text)
