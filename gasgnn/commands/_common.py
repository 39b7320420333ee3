"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gasgnn.space import SearchSpace


def add_space_args(p: argparse.ArgumentParser) -> None:
    """Adds the search-space options: ``--space PRESET``, ``--ops`` and the individual fields, which
    override the preset's (their defaults are the preset's, the ``gas`` preset's by default)."""
    from gasgnn.space import SPACE_PRESETS

    d = SearchSpace()
    g = p.add_argument_group("search space (--space picks a preset; the other options override its fields)")
    g.add_argument("--space", default="gas", metavar="PRESET",
                   help="search-space preset: " + "; ".join(
                       f"{n} ({SPACE_PRESETS.meta(n)['description']})" if SPACE_PRESETS.meta(n)["description"]
                       else n for n in SPACE_PRESETS.names()) + " (default: %(default)s)")
    g.add_argument("--ops", default=None, metavar="OP,OP,...",
                   help="candidate ops, comma-separated, the columns of alpha (default: the preset's; gas: "
                        f"{','.join(d.ops)}). MODULE:NAME imports MODULE (a module or a .py file) that registers "
                        "op NAME, e.g. --ops skip_connect,sep_conv_3x3,my_ops.py:conv_5x5 (docs/extending.md)")
    g.add_argument("--num-cells", type=int, default=None, help=f"cells L (default: the preset's; gas: {d.num_cells})")
    g.add_argument("--num-nodes", type=int, default=None,
                   help=f"intermediate nodes per cell M (default: the preset's; gas: {d.num_nodes})")
    g.add_argument("--reduction-cells", type=int, nargs="*", default=None,
                   help="indices of reduction cells (default: the preset's, else L//3 and 2L//3)")
    g.add_argument("--channels", type=int, default=None,
                   help=f"op channels of the first cells (default: the preset's; gas: {d.channels})")
    g.add_argument("--num-classes", type=int, default=None,
                   help=f"classes (default: the preset's; gas: {d.num_classes})")
    g.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size the space is laid out for (default: the preset's; gas: "
                        f"{' '.join(map(str, d.input_size))})")


#: ``add_space_args`` destinations that are :class:`SearchSpace` fields of the same name.
_SPACE_FIELDS = ("num_cells", "num_nodes", "reduction_cells", "channels", "num_classes", "input_size")


def space_from_args(args: argparse.Namespace, **overrides: Any) -> SearchSpace:
    """Builds the :class:`SearchSpace` from :func:`add_space_args` options: the ``--space`` preset, then
    ``--ops`` and every field option given, then ``overrides``.

    Raises:
        ValueError: naming the option (an unknown preset or op, an impossible field).
    """
    from gasgnn.space import SPACE_PRESETS, SpaceError, preset_space, resolve_ops

    preset = getattr(args, "space", None) or "gas"
    if preset not in SPACE_PRESETS:
        raise ValueError(f"--space: unknown preset '{preset}'; presets: {', '.join(SPACE_PRESETS.names())}")
    kw: dict[str, Any] = {f: getattr(args, f) for f in _SPACE_FIELDS if getattr(args, f, None) is not None}
    if kw.get("reduction_cells") is not None:
        kw["reduction_cells"] = tuple(kw["reduction_cells"])
    if getattr(args, "ops", None) is not None:
        kw["ops"] = resolve_ops(args.ops, where="--ops")
    kw.update(overrides)
    try:
        return preset_space(preset, **kw)
    except SpaceError as e:  # "SearchSpace.num_cells: ..." -> "--num-cells: ..."
        msg = str(e)
        field = msg.partition(":")[0].removeprefix("SearchSpace.")
        if field in (*_SPACE_FIELDS, "ops"):
            msg = f"--{field.replace('_', '-')}" + msg[len("SearchSpace." + field):]
        raise ValueError(f"{msg} (space preset '{preset}')") from None


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
