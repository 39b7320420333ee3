"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gasgnn.space import SearchSpace


def add_space_args(p: argparse.ArgumentParser) -> None:
    """Adds the search-space options (defaults from :class:`SearchSpace`)."""
    d = SearchSpace()
    g = p.add_argument_group("search space")
    g.add_argument("--num-cells", type=int, default=d.num_cells, help="cells L (default: %(default)s)")
    g.add_argument("--num-nodes", type=int, default=d.num_nodes,
                   help="intermediate nodes per cell M (default: %(default)s)")
    g.add_argument("--reduction-cells", type=int, nargs="*", default=None,
                   help="indices of reduction cells (default: L//3 and 2L//3)")
    g.add_argument("--channels", type=int, default=d.channels,
                   help="op channels of the first cells (default: %(default)s)")
    g.add_argument("--num-classes", type=int, default=d.num_classes, help="classes (default: %(default)s)")
    g.add_argument("--input-size", type=int, nargs=2, default=list(d.input_size), metavar=("H", "W"),
                   help="input size the space is laid out for (default: %(default)s)")


def space_from_args(args: argparse.Namespace, **overrides: Any) -> SearchSpace:
    """Builds the :class:`SearchSpace` from :func:`add_space_args` options."""
    kw = dict(
        num_cells=args.num_cells, num_nodes=args.num_nodes, reduction_cells=args.reduction_cells,
        channels=args.channels, num_classes=args.num_classes, input_size=tuple(args.input_size),
    )
    kw.update(overrides)
    return SearchSpace(**kw)


def emit_json(obj: Any) -> None:
    """Prints machine-readable output on stdout."""
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def add_model_args(p: argparse.ArgumentParser, weights_help: str) -> None:
    """Adds where a trained network comes from: ``--checkpoint``, or ``--genotype`` with ``--weights``,
    ``--head`` and ``--head-channels`` (eval, export)."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="training checkpoint (best.pt or last.pt)")
    src.add_argument("--genotype", help="genotype JSON file or reference name (hand_sep, hand_light)")
    p.add_argument("--weights", type=Path, default=None, help=f"with --genotype: {weights_help}")
    p.add_argument("--head", default=None, help="with --genotype: head, aspp or ppm (default: aspp)")
    p.add_argument("--head-channels", type=int, default=128, help="with --genotype: head width (default: %(default)s)")


def card_drawer() -> Any:
    """The cell drawing of a pretrained network's model card (:func:`gasgnn.viz.draw_network`)."""
    from gasgnn.viz import draw_network

    return draw_network
