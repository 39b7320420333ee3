"""The ``gasgnn`` command.

Every subcommand lives in its own module under :mod:`gasgnn.commands` and defines
``register(subparsers) -> None`` (adding its parser, with ``set_defaults(func=run)``). Modules are
discovered automatically, so adding a command touches no shared file.

Plugins (``--plugin MODULE_OR_FILE``, repeatable, anywhere on the line, and ``$GASGNN_PLUGINS``) are
imported before the parser is built, so the ops, datasets, guides, ... they register are valid values
of every option (``--ops``, ``--data``, ``--guide``); see ``docs/extending.md``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from gasgnn import __version__


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="gasgnn",
        description=(
            "Graph-guided architecture search for real-time semantic segmentation (GAS, CVPR 2020). "
            "Run 'gasgnn COMMAND --help' for a command's options."
        ),
    )
    parser.add_argument("--version", action="version", version=f"gasgnn {__version__}")
    # main() takes --plugin out of the arguments before parsing (it must act before the parser exists):
    # declared here for --help only, so it never reaches a command's settings
    parser.add_argument("--plugin", action="append", default=argparse.SUPPRESS, metavar="MODULE",
                        help="import MODULE (a module name or a .py file) first, so the ops, datasets, guides, "
                             "... it registers can be used (repeatable; also $GASGNN_PLUGINS, comma-separated)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import gasgnn.commands as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"gasgnn.commands.{info.name}")
        mod.register(sub)
    return parser


def split_plugins(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Takes every ``--plugin X`` / ``--plugin=X`` out of ``argv`` (wherever it is).

    Returns:
        (list, list): the plugins, in order, and the remaining arguments.
    """
    plugins, rest, it = [], [], iter(argv)
    for a in it:
        if a == "--":  # everything after is positional
            rest += [a, *it]
            break
        if a == "--plugin":
            value = next(it, None)
            if value is None:
                raise ValueError("--plugin: expected a module name or a .py file")
            plugins.append(value)
        elif a.startswith("--plugin="):
            plugins.append(a.partition("=")[2])
        else:
            rest.append(a)
    return plugins, rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gasgnn`` command; returns the exit code."""
    from gasgnn.registry import load_plugins, plugins_from_env

    try:
        plugins, rest = split_plugins(list(sys.argv[1:] if argv is None else argv))
        load_plugins([*plugins_from_env(), *plugins])
    except ValueError as e:
        print(f"gasgnn: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(rest)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from gasgnn.commands._config import prepare

    try:
        # --config, finite numeric flags, --print-config, --threads / --omp-wait (see commands/_config.py)
        args = prepare(parser, rest, args, reexec=argv is None)
        if args is None:
            return 0
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        # Bad input (a malformed file, a wrong path, an impossible setting): one clear line, no traceback.
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"gasgnn {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
