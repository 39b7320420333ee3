"""Options every job command shares: ``--config FILE``, ``--print-config``, ``--threads``, ``--omp-wait``,
and the run-directory options ``--overwrite`` and ``--allow-changes``.

A config file is a mapping of option names to values (``latency_weight: 0.05`` or ``"latency-weight": 0.05``),
YAML when PyYAML is installed, else JSON. Options given on the command line override it. A run's
``config.json`` is such a file too: its ``args`` section holds the resolved options of the run, so
``gasgnn search --config runs/a/config.json --out runs/b`` repeats run ``a``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Values of ``--omp-wait`` (and ``$GASGNN_OMP_WAIT``).
OMP_WAIT_CHOICES = ("auto", "passive", "active", "default")

#: Namespace entries that are not settings of the job (never read from or written to config files).
NOT_SETTINGS = frozenset({"func", "command", "latency_command", "config", "print_config", "resume", "overwrite",
                          "allow_changes", "json", "help"})


class DefaultsFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already states its default or the
    default is :obj:`None` / off (so no option prints ``(default: ...) (default: None)``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        h = action.help or ""
        if "%(default)" in h or "(default" in h or action.default in (None, False, argparse.SUPPRESS):
            return h
        if action.option_strings and action.nargs != 0:
            return h + " (default: %(default)s)"
        return h


def add_job_args(p: argparse.ArgumentParser, run_dir: bool = False, resume: bool = False,
                 threads: str | bool | None = "auto") -> None:
    """Adds ``--config``, ``--print-config``, ``--threads`` and ``--omp-wait`` (and with ``run_dir``:
    ``--overwrite``; with ``resume``: ``--allow-changes``). ``threads`` is the default of ``--threads``
    (:obj:`None`: torch's choice, for timing commands whose numbers depend on it; :obj:`False`: the command
    has its own option)."""
    g = p.add_argument_group("run control")
    g.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="read options from a YAML or JSON file (or a run's config.json); flags override it")
    g.add_argument("--print-config", action="store_true", help="print the resolved options as JSON and exit")
    if threads is False:
        p.set_defaults(_job_parser=p)
        return
    g.add_argument("--threads", default=os.environ.get("GASGNN_THREADS", threads), metavar="auto|N",
                   help="CPU threads; 'auto' uses the cores other processes leave free "
                        f"(default: $GASGNN_THREADS or {threads or 'torch default'})")
    g.add_argument("--omp-wait", choices=list(OMP_WAIT_CHOICES),
                   default=os.environ.get("GASGNN_OMP_WAIT", "auto"),
                   help="OpenMP wait policy: 'passive' sleeps idle threads (robust when other processes share "
                        "the cores, slower on a quiet machine), 'active' spins; 'auto' chooses passive only "
                        "when other processes keep cores busy at start; 'default' leaves OMP_WAIT_POLICY alone "
                        "(default: $GASGNN_OMP_WAIT or auto)")
    if run_dir:
        g.add_argument("--overwrite", action="store_true",
                       help="replace an earlier run in --out (its files are removed first)")
        g.add_argument("--logger", action="append", default=[], metavar="NAME",
                       help="also log metrics (and images) to a backend, repeatable: tensorboard (files in "
                            "OUT/events; 'tensorboard --logdir OUT/events'), wandb (offline), mlflow (local store); "
                            "metrics.csv is always written")
    if resume:
        g.add_argument("--allow-changes", action="store_true",
                       help="with --resume: accept settings that differ from the checkpoint's; the new values "
                            "are applied (learning rates to the optimisers and schedulers) and recorded in "
                            "config_history.jsonl")
    p.set_defaults(_job_parser=p)


# ------------------------------------------------------------------------------------------------
def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a config file (YAML or JSON; a run's ``config.json`` gives its ``args`` section).

    Raises:
        FileNotFoundError: naming the file.
        ValueError: naming the file when it cannot be parsed or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        import yaml  # optional: JSON is YAML, so one parser reads both when it is installed
    except ImportError:
        yaml = None
    try:
        if yaml is not None and path.suffix.lower() != ".json":
            obj = yaml.safe_load(text)
        else:
            obj = json.loads(text)
    except Exception as e:  # json and yaml raise their own types
        hint = "" if yaml is not None or path.suffix.lower() == ".json" else " (YAML needs PyYAML: pip install pyyaml)"
        raise ValueError(f"--config {path}: cannot parse: {e}{hint}") from None
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ValueError(f"--config {path}: expected a mapping of option names to values, got {type(obj).__name__}")
    if "args" in obj and isinstance(obj["args"], dict):  # a run's config.json
        obj = obj["args"]
    return obj


def _option_map(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    out: dict[str, argparse.Action] = {}
    for a in p._actions:
        if not a.option_strings or a.dest in NOT_SETTINGS or a.dest.startswith("_"):
            continue
        out[a.dest] = a
        for s in a.option_strings:
            out[s.lstrip("-")] = a
    return out


def _config_value(a: argparse.Action, k: str, v: Any, path: Any) -> Any:
    """A config file's value for option ``a``, checked as the command line would check it (a file gives typed
    JSON/YAML values, so ``1.5`` for an integer or ``true`` for a number must not slip through)."""
    def bad(what: str) -> ValueError:
        return ValueError(f"--config {path}: key '{k}': expected {what}, got {v!r}")

    def one(x: Any) -> Any:
        t = a.type
        if isinstance(x, str) and callable(t):
            try:
                return t(x)
            except (TypeError, ValueError, argparse.ArgumentTypeError) as e:
                raise bad(f"a value for {a.option_strings[-1]} ({e})") from None
        if t is int and (isinstance(x, bool) or not isinstance(x, int)):
            raise bad("an integer")
        if t is float and (isinstance(x, bool) or not isinstance(x, (int, float))):
            raise bad("a number")
        if t is float:
            return float(x)
        if t is not None and t not in (int, float) and not isinstance(x, str):
            raise bad("a string")
        if t is None and isinstance(x, bool):
            raise bad("a string or a number")
        return x

    if a.nargs == 0:  # store_true / store_false
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if v is None:
        return v
    if a.nargs in ("*", "+") or isinstance(a.nargs, int) or isinstance(a, argparse._AppendAction):
        if not isinstance(v, list):
            raise bad("a list")
        if isinstance(a.nargs, int) and len(v) != a.nargs:
            raise bad(f"a list of {a.nargs} values")
        return [one(x) for x in v]
    return one(v)


def config_defaults(p: argparse.ArgumentParser, path: str | os.PathLike) -> dict[str, Any]:
    """The options of config file ``path`` as parser defaults (dest -> value) of ``p``, each checked against
    its option's type, arity and choices.

    Raises:
        ValueError: naming the file and the key for a key that is no option of the command or a value the
            option would refuse on the command line.
    """
    obj = read_config_file(path)
    opts = _option_map(p)
    out: dict[str, Any] = {}
    for k, v in obj.items():
        a = opts.get(str(k))
        if a is None:
            if str(k) in NOT_SETTINGS:
                continue
            raise ValueError(f"--config {path}: unknown key '{k}' (not an option of '{p.prog}'; "
                             f"see '{p.prog} --help')")
        v = _config_value(a, str(k), v, path)
        for x in (v if isinstance(v, list) else [v]):
            if a.choices is not None and x is not None and x not in a.choices:
                raise ValueError(f"--config {path}: key '{k}': {x!r} is not one of {list(a.choices)}")
        out[a.dest] = v
    return out


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The resolved options of a job as JSON-ready values (what ``--print-config`` prints and a run's
    ``config.json`` records under ``args``)."""
    out: dict[str, Any] = {}
    for k, v in sorted(vars(args).items()):
        if k in NOT_SETTINGS or k.startswith("_") or callable(v):
            continue
        if isinstance(v, Path):
            v = str(v)
        elif isinstance(v, (list, tuple)):
            v = [str(x) if isinstance(x, Path) else x for x in v]
        out[k] = v
    return out


def check_finite_flags(args: argparse.Namespace, p: argparse.ArgumentParser | None = None) -> None:
    """Raises ``ValueError`` naming the option when a numeric option is NaN or infinite."""
    names = {a.dest: a.option_strings[-1] for a in (p._actions if p is not None else []) if a.option_strings}
    for k, v in vars(args).items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        for x in vals:
            if isinstance(x, float) and not math.isfinite(x):
                flag = names.get(k, "--" + k.replace("_", "-"))
                raise ValueError(f"{flag}: must be a finite number, got {x}")


def omp_wait_policy(choice: str | None, busy: float | None = None) -> str | None:
    """The ``OMP_WAIT_POLICY`` value ``--omp-wait`` asks for (:obj:`None`: leave the environment alone)."""
    if choice in (None, "default"):
        return None
    if choice == "auto":
        from gasgnn.utils import busy_cores

        busy = busy_cores(0.2) if busy is None else busy
        return "PASSIVE" if busy >= 0.5 else None
    return choice.upper()


def prepare(parser: argparse.ArgumentParser, argv: Sequence[str] | None, args: argparse.Namespace,
            reexec: bool = False) -> argparse.Namespace | None:
    """Applies ``--config`` (re-parsing so flags override it), checks numeric flags, prints the config
    (returns :obj:`None`: exit), and sets the thread policy. With ``reexec`` (the real command line) a
    needed ``OMP_WAIT_POLICY`` restarts the process (with ``sys.argv``), since OpenMP reads it only when it
    is loaded."""
    sp = getattr(args, "_job_parser", None)
    if sp is None:
        check_finite_flags(args, getattr(args, "_cmd_parser", None))
        return args
    if args.config is not None:
        sp.set_defaults(**config_defaults(sp, args.config))
        args = parser.parse_args(argv)
    check_finite_flags(args, sp)
    if not hasattr(args, "threads"):  # a command with its own thread option
        return _print_config(args)
    omp = getattr(args, "omp_wait", "default")
    if omp not in OMP_WAIT_CHOICES:  # a default from $GASGNN_OMP_WAIT is not checked by argparse
        raise ValueError(f"$GASGNN_OMP_WAIT / --omp-wait: {omp!r} is not one of {list(OMP_WAIT_CHOICES)}")
    n = job_threads(args)
    if _print_config(args) is None:
        return None
    policy = omp_wait_policy(omp)
    if policy and os.environ.get("OMP_WAIT_POLICY", "").upper() != policy:
        if reexec and not os.environ.get("GASGNN_REEXEC"):
            os.environ.update(OMP_WAIT_POLICY=policy, GASGNN_REEXEC="1")
            sys.stdout.flush()
            # the real command line (with any --plugin, which main() takes out of argv)
            os.execv(sys.executable, [sys.executable, "-m", "gasgnn", *sys.argv[1:]])
    if n is not None:
        import torch

        torch.set_num_threads(n)
    return args


def _print_config(args: argparse.Namespace) -> argparse.Namespace | None:
    if args.print_config:
        json.dump(settings(args), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return None
    return args


def job_threads(args: argparse.Namespace, cores: int | None = None, busy: float | None = None) -> int | None:
    """The CPU thread count of a job (:func:`gasgnn.utils.resolve_threads`), stored back into ``args.threads``
    as a number so the run records what it used. With ``--deterministic``, ``auto`` would follow the machine's
    load and change the floating-point results between two runs, so it becomes all cores (with a note)."""
    from gasgnn.utils import resolve_threads

    spec = args.threads
    if getattr(args, "deterministic", False) and str(spec).strip().lower() == "auto":
        n = cores or os.cpu_count() or 1
        print(f"gasgnn: --deterministic: --threads auto follows the machine's load, which changes results between "
              f"runs; using {n} threads (all cores). Pass --threads N to choose.", file=sys.stderr)
        spec = n
    n = resolve_threads(spec, cores=cores, busy=busy)
    if n is not None:
        args.threads = n
    return n


@contextlib.contextmanager
def claim_out(args: argparse.Namespace, command: str, out: Path | None = None, main: bool = True) -> Iterator[None]:
    """Holds ``--out`` for the job (see :func:`gasgnn.runner.claim_run_dir`); a no-op off rank 0."""
    if not main:
        yield
        return
    from gasgnn.runner import claim_run_dir

    def say(m: str) -> None:
        print(f"{command}: {m}", file=sys.stderr)

    lock = claim_run_dir(out if out is not None else args.out, resume=getattr(args, "resume", False),
                         overwrite=getattr(args, "overwrite", False), command=command, say=say)
    try:
        yield
    finally:
        lock.release()
