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
from gasgnn.errors import EXIT_CODES, RefusedError, WriteError


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
    for p in sub.choices.values():  # every command's own parser, for the checks of its flags
        p.set_defaults(_cmd_parser=p)
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
    """Entry point of the ``gasgnn`` command; returns the exit code (:data:`gasgnn.errors.EXIT_CODES`:
    0 done, 1 a write failed, 2 bad input, 3 refused or diverged run, 130 interrupted)."""
    from gasgnn.registry import load_plugins, plugins_from_env

    try:
        plugins, rest = split_plugins(list(sys.argv[1:] if argv is None else argv))
        load_plugins([*plugins_from_env(), *plugins])
    except ValueError as e:
        print(f"gasgnn: error: {e}", file=sys.stderr)
        return EXIT_CODES["bad_input"]
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
        return EXIT_CODES["interrupted"]
    except BaseException as e:
        code = exit_code(e)
        if code is None:
            raise
        print(f"gasgnn {args.command}: error: {one_line(e)}", file=sys.stderr)
        return code


def exit_code(e: BaseException) -> int | None:
    """The exit code of a gasgnn error (:obj:`None`: not one, an unexpected error that keeps its traceback).

    A refused or diverged run is 3, a file that could not be written 1, bad input (a flag, a file, a field) 2.
    """
    if isinstance(e, RefusedError):
        return EXIT_CODES["refused"]
    if isinstance(e, WriteError):
        return EXIT_CODES["failed"]
    if isinstance(e, (ValueError, KeyError, FileNotFoundError, PermissionError, NotADirectoryError,
                      IsADirectoryError)):
        return EXIT_CODES["bad_input"]
    return None


def one_line(e: BaseException) -> str:
    """The message of ``e`` as one line (a ``KeyError``'s text without the quotes ``str`` adds)."""
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(str(msg).split())


if __name__ == "__main__":
    sys.exit(main())
