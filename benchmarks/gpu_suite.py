"""Everything a session lent a GPU should measure, in one command that cannot lose its results.

    PYTHONPATH=. python benchmarks/gpu_suite.py --out runs/gpu --camvid data_pack/camvid
    PYTHONPATH=. python benchmarks/gpu_suite.py --out runs/gpu --only fps,latency     # re-run a part (merged)
    PYTHONPATH=. python benchmarks/gpu_suite.py --out runs/gpu_dry --dry-run          # CPU, tiny sizes (CI)
    python benchmarks/gpu_suite.py --list                                             # rows, expected seconds

Built for a scarce GPU window with a hard limit (the device machine gives 10 minutes a command):

- Preflight: a fresh interpreter imports torch, Triton, ONNX Runtime, PyG and gasgnn and runs one CUDA kernel
  (~5 s). If that fails, its row says why, the other rows are recorded as skipped, and the suite stops.
- Every row (``benchmarks/gpu_rows.py``) runs in a process of its own with its own timeout. By default the
  process is a fork of the suite, which imported torch and gasgnn once but never touches CUDA, so a row
  starts in ~0.1 s instead of ~4 s and initialises CUDA itself; ``--isolation spawn`` starts a fresh
  interpreter per row instead. A row that overruns is killed with its whole process group (``timeout``), one
  that crashes or raises is ``failed`` with the tail of its log, and the next row runs either way.
- After every row, ``OUT/gpu_suite.json`` is rewritten atomically (with ``OUT/gpu_suite.md``, and the row's
  log is appended to ``OUT/gpu_suite.log``): a suite killed at any moment leaves a valid file holding the rows
  done so far (``finished: false``).
- ``--budget-s`` (default 420) ends the run in time: each row's timeout is its cap clipped to what is left,
  and a row that cannot get half its expected time is recorded ``skipped`` (later, cheaper rows still run).
- ``--only SECTION[,SECTION]`` (or a row id ``section:name``; repeatable) re-runs a part: rows of an earlier
  ``gpu_suite.json`` in ``--out`` that are not re-run are kept. Without ``--only`` an existing result is
  replaced only with ``--overwrite``.

The rows run most valuable first (kernels, search step, FPS, latency table, a short real search, then the
compiled variants); ``--list`` prints them with their expected seconds on an H200 (estimates until the
first GPU run; how they were priced: ``benchmarks/gpu_rows.py``). ``--dry-run`` runs every row on the CPU at
tiny sizes (``tests/test_gpu_suite.py`` runs it in CI, so the suite cannot rot).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the rows' modules, then this checkout's gasgnn

from gpu_common import FAULT_ENV, Ctx, RowFailed, RowSkipped, die_with_parent  # noqa: E402
from gpu_report import render  # noqa: E402
from gpu_rows import ROWS, SECTIONS  # noqa: E402

FORMAT = "gasgnn-gpu-suite"
PREFLIGHT = "preflight:device"


class Terminated(Exception):
    """The suite got SIGTERM or SIGINT: the running row is killed and recorded, then the suite stops."""


# ----------------------------------------------------------------------------------------------
# the child side: one row


def _eager_compile() -> None:
    """Dry run: ``torch.compile`` traces with TorchDynamo and runs its eager backend (no Inductor code
    generation on the CPU, which would take minutes)."""
    import torch

    orig = torch.compile

    def compile_eager(model: Any = None, **kw: Any) -> Any:
        kw.pop("mode", None)
        kw["backend"] = "eager"
        return orig(model, **kw) if model is not None else orig(**kw)

    torch.compile = compile_eager


def _fault(row_id: str) -> str | None:
    """The failure ``$GASGNN_GPU_SUITE_FAULT`` asks this row for (tests: ``ROW_ID=error|crash|hang``)."""
    for item in os.environ.get(FAULT_ENV, "").split(","):
        rid, _, kind = item.strip().rpartition("=")
        if rid == row_id:
            return kind
    return None


def run_row(row_id: str, ctx: Ctx, result: Path, kill_at: float | None = None) -> int:
    """Runs one row in this process and writes ``{status, figures, error}`` to ``result``; returns 0. With
    ``kill_at`` (a :func:`time.time` when the suite kills the row), every thread's stack goes to stderr (the
    row's log) 2 s before, so a hang says where it hung."""
    import faulthandler
    import json

    from gasgnn.utils import json_safe, write_json

    if kill_at:
        faulthandler.dump_traceback_later(max(kill_at - time.time() - 2.0, 0.5))

    row = {r.id: r for r in ROWS}[row_id]
    if ctx.threads:
        import torch

        torch.set_num_threads(ctx.threads)
    if ctx.dry:
        _eager_compile()
    status, figures, error = "ok", {}, None
    try:
        kind = _fault(row_id)
        if kind == "crash":
            os.abort()
        elif kind == "hang":
            time.sleep(10**6)
        elif kind == "error":
            raise RuntimeError(f"injected fault ({FAULT_ENV})")
        figures = row.fn(ctx)
    except RowSkipped as e:
        status, error = "skipped", str(e)
    except Exception as e:  # recorded with the traceback in the log; the suite goes on
        traceback.print_exc()
        status, error = "failed", (str(e) if isinstance(e, RowFailed) else f"{type(e).__name__}: {e}")
        figures = getattr(e, "figures", {})
    figures = json.loads(json.dumps(json_safe(figures), default=str))
    write_json(result, {"status": status, "figures": figures, "error": error})
    return 0


# ----------------------------------------------------------------------------------------------
# the parent side: processes


def _start_fork(row_id: str, ctx: Ctx, result: Path, log: Path, kill_at: float) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # its own process group: a timeout kills the row and everything it started
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the suite's handlers are not the row's
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        die_with_parent()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout.reconfigure(line_buffering=True)  # a row killed at its timeout keeps what it printed
        code = run_row(row_id, ctx, result, kill_at)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start_spawn(row_id: str, args: argparse.Namespace, result: Path, log: Path,
                 kill_at: float) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--row", row_id, "--result", str(result),
           "--work", str(args.work), "--reference", args.reference, "--kill-at", repr(kill_at)]
    cmd += ["--dry-run"] if args.dry_run else []
    cmd += ["--camvid", args.camvid] if args.camvid else []
    cmd += ["--genotype", args.genotype] if args.genotype else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_parent, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _kill(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (the row and whatever it started: compile workers, a pytest)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(pid: int, end: float) -> int | None:
    """The exit code of ``pid`` (negative: killed by that signal), or :obj:`None` after killing its process
    group at ``end`` (a :func:`time.monotonic` time)."""
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() >= end:
                return None
            time.sleep(0.05)
    finally:
        _kill(pid)  # also what the row left running
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [ln.rsplit("\r", 1)[-1] for ln in text.splitlines()]  # progress bars: their last state
    return "\n".join(ln for ln in lines if ln.strip())[-chars:]


# ----------------------------------------------------------------------------------------------
# the suite


class Suite:
    """Runs the selected rows under the budget and records each one as it ends."""

    def __init__(self, args: argparse.Namespace, rows: list) -> None:
        from gasgnn.utils import atomic_write_text, read_json, write_json

        self.args, self.rows = args, rows
        self._procs: list[subprocess.Popen] = []
        self.write_json, self.write_text = write_json, atomic_write_text
        self.out, self.work = args.out, args.work
        self.json_path, self.md_path, self.log_path = (self.out / f"gpu_suite.{x}" for x in ("json", "md", "log"))
        self.ctx = Ctx(dry=args.dry_run, work=self.work, camvid=args.camvid, genotype=args.genotype,
                       reference=args.reference, threads=args.threads)
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget_s
        kept: list[dict] = []
        if self.json_path.exists():
            old = read_json(self.json_path, "earlier GPU suite result")
            if not isinstance(old, dict) or old.get("format") != FORMAT:
                raise ValueError(f"--out {self.out}: {self.json_path.name} is not a GPU suite result")
            if not args.only and not args.overwrite:
                raise ValueError(f"--out {self.out} holds a GPU suite result; pass --overwrite to replace it, "
                                 "--only SECTION to re-run a part of it, or choose another --out")
            if args.only and bool(old.get("dry_run")) != args.dry_run:
                raise ValueError(f"--out {self.out} holds a {'dry' if old.get('dry_run') else 'GPU'} run; "
                                 "re-run parts of it the same way, or choose another --out")
            if args.only:
                ids = {r.id for r in rows} | {PREFLIGHT}
                kept = [r for r in old.get("rows", []) if r.get("id") not in ids]
            self.runs = old.get("runs", []) if args.only else []
        else:
            self.runs = []
        if not args.only:
            self.log_path.unlink(missing_ok=True)  # a new result: its log starts over (--only runs append)
        self.runs.append({"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          "command": " ".join(sys.argv), "budget_s": args.budget_s, "only": args.only or None,
                          "isolation": args.isolation, "finished": False, "wall_s": None})
        self.state: dict[str, Any] = {
            "format": FORMAT, "version": 1, "dry_run": args.dry_run, "device": {},
            "planned": [r.id for r in ROWS], "expected": {r.id: r.expected_s for r in ROWS},
            "expected_total_s": sum(r.expected_s for r in ROWS),
            "runs": self.runs, "finished": False, "rows": kept}

    # -- records
    def record(self, rec: dict[str, Any], log: Path | None = None) -> None:
        rows = [r for r in self.state["rows"] if r["id"] != rec["id"]] + [rec]
        order = {rid: i for i, rid in enumerate(self.state["planned"])}
        self.state["rows"] = sorted(rows, key=lambda r: order.get(r["id"], len(order)))
        self.runs[-1]["wall_s"] = time.monotonic() - self.t0
        self.write_json(self.json_path, self.state)
        self.write_text(self.md_path, render(self.state))
        if log is not None:
            with open(self.log_path, "a", errors="replace") as f:
                f.write(f"\n===== {rec['id']}: {rec['status']} after {rec['seconds']:.1f} s =====\n")
                try:
                    f.write(log.read_text(errors="replace"))
                except OSError:
                    pass
        summary = (rec.get("figures") or {}).get("summary") or (rec.get("error") or "").split("\n")[0]
        n = self.state["planned"].index(rec["id"]) + 1 if rec["id"] in self.state["planned"] else 0
        print(f"[{n:2d}/{len(self.state['planned'])}] {rec['id']:<42} {rec['status']:<8} {rec['seconds']:6.1f} s "
              f"(expected {rec['expected_s']:.0f})  {summary[:150]}", flush=True)

    def _rec(self, row: Any, status: str, seconds: float = 0.0, timeout: float | None = None,
             figures: dict | None = None, error: str | None = None, exit_code: int | None = None) -> dict[str, Any]:
        return {"id": row.id, "section": row.section, "name": row.name, "status": status, "seconds": seconds,
                "expected_s": row.expected_s, "timeout_s": timeout, "figures": figures or {}, "error": error,
                "exit": exit_code}

    # -- one row
    def run_one(self, row: Any, spawn: bool = False, meanwhile: Any = None) -> dict[str, Any]:
        """Runs ``row`` in a process of its own and records it (``meanwhile``: work for the suite while the
        row runs)."""
        if self.args.dry_run and row.dry_same_as:
            rec = self._rec(row, "skipped", error=f"dry run: on the CPU this row repeats {row.dry_same_as}")
            self.record(rec)
            return rec
        left = self.deadline - time.monotonic()
        cap = row.dry_cap_s if self.args.dry_run else row.cap_s
        if self.args.max_row_s and row.id != PREFLIGHT:
            cap = min(cap, self.args.max_row_s)
        need = 1.0 if self.args.dry_run else row.min_s
        if left < need:
            rec = self._rec(row, "skipped", error=f"over the budget: {max(left, 0):.0f} s left of --budget-s "
                                                  f"{self.args.budget_s:.0f}, the row needs at least {need:.0f} s")
            self.record(rec)
            return rec
        timeout = min(cap, left)
        safe = row.id.replace(":", "-")
        result, log = self.work / "rows" / f"{safe}.json", self.work / "rows" / f"{safe}.log"
        result.unlink(missing_ok=True)
        t = time.monotonic()
        if spawn or self.args.isolation == "spawn":
            proc = _start_spawn(row.id, self.args, result, log, time.time() + timeout)
            self._procs.append(proc)  # kept: a collected Popen would reap the process behind _wait's back
            pid = proc.pid
        else:
            pid = _start_fork(row.id, self.ctx, result, log, time.time() + timeout)
        try:
            if meanwhile is not None:
                meanwhile()
            code = _wait(pid, t + timeout)
        except Terminated as e:
            _kill(pid)
            rec = self._rec(row, "failed", time.monotonic() - t, timeout, error=f"suite stopped by {e}; "
                            f"the row was killed\n{_tail(log)}")
            self.record(rec, log)
            raise
        seconds = time.monotonic() - t
        if code is None:
            rec = self._rec(row, "timeout", seconds, timeout, error=f"timed out after {timeout:.0f} s "
                            f"(killed)\n{_tail(log)}")
        elif result.is_file():
            from gasgnn.utils import read_json

            res = read_json(result, "row result")
            err = res.get("error")
            if res["status"] == "failed":
                err = f"{err}\n--- log tail ---\n{_tail(log, 2000)}"
            rec = self._rec(row, res["status"], seconds, timeout, res.get("figures"), err, code)
        else:
            how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
            rec = self._rec(row, "failed", seconds, timeout, error=f"the row's process {how} without a result"
                            f"\n{_tail(log)}", exit_code=code)
        self.record(rec, log)
        return rec

    def run(self) -> int:
        (self.work / "rows").mkdir(parents=True, exist_ok=True)
        pre = next(r for r in ROWS if r.id == PREFLIGHT)
        # A fresh interpreter checks the imports the rows need and the device, while this process imports
        # what the forked rows will share.
        fork = self.args.isolation == "fork"
        rec = self.run_one(pre, spawn=True, meanwhile=self._warm if fork else None)
        self.state["device"] = rec["figures"]
        todo = [r for r in self.rows if r.id != PREFLIGHT]
        if rec["status"] != "ok":
            for row in todo:
                self.record(self._rec(row, "skipped", error=f"preflight {rec['status']}: "
                                                            f"{(rec['error'] or '').splitlines()[0]}"))
            return self.finish()
        for row in todo:
            self.run_one(row)
        return self.finish()

    def _warm(self) -> None:
        try:
            _warm_imports()
        except Exception as e:  # the rows then start fresh interpreters and report the import error themselves
            print(f"gpu_suite: importing the rows' modules failed ({type(e).__name__}: {e}); every row runs in a "
                  "fresh interpreter (--isolation spawn)", file=sys.stderr, flush=True)
            self.args.isolation = "spawn"
            return
        import torch

        if torch.cuda.is_initialized():  # a forked child could not use CUDA after this: fresh interpreters then
            print("gpu_suite: an import initialised CUDA in the suite's process; every row runs in a fresh "
                  "interpreter (--isolation spawn)", file=sys.stderr, flush=True)
            self.args.isolation = "spawn"

    def finish(self) -> int:
        self.runs[-1]["finished"] = True
        self.state["finished"] = True
        self.runs[-1]["wall_s"] = time.monotonic() - self.t0
        self.write_json(self.json_path, self.state)
        self.write_text(self.md_path, render(self.state))
        bad = [r["id"] for r in self.state["rows"] if r["status"] in ("failed", "timeout")]
        print(f"wrote {self.json_path} and {self.md_path} ({self.runs[-1]['wall_s']:.0f} s)"
              + (f"; not ok: {', '.join(bad)}" if bad else ""), flush=True)
        return 1 if bad else 0


def _warm_imports() -> None:
    """What the rows import, imported once before forking (never anything that initialises CUDA)."""
    import bench_search_step  # noqa: F401
    import naive_darts  # noqa: F401
    import torch.profiler  # noqa: F401

    import gasgnn.data  # noqa: F401
    import gasgnn.latency  # noqa: F401
    import gasgnn.models  # noqa: F401
    import gasgnn.search  # noqa: F401
    import gasgnn.train  # noqa: F401


# ----------------------------------------------------------------------------------------------
# command line


def _select(only: list[str] | None) -> list:
    if not only:
        return list(ROWS)
    want = [w.strip() for item in only for w in item.split(",") if w.strip()]
    ids = {r.id for r in ROWS}
    bad = [w for w in want if w not in SECTIONS and w not in ids]
    if bad:
        raise ValueError(f"--only: unknown section or row {', '.join(bad)}; sections: {', '.join(SECTIONS)} "
                         "(rows: --list)")
    return [r for r in ROWS if r.section in want or r.id in want]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="folder for gpu_suite.json, gpu_suite.md and gpu_suite.log")
    p.add_argument("--work", type=Path, default=None,
                   help="scratch folder: row logs and results, latency tables, the search run (default: OUT/work; "
                        "on the device machine put it outside $OUT, which returns at most 8 files)")
    p.add_argument("--dry-run", action="store_true", help="every row on the CPU at tiny sizes (CI)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="end the whole run within this many seconds (default: %(default)s)")
    p.add_argument("--only", action="append", default=None, metavar="SECTION",
                   help=f"run only these sections or rows (comma list or repeated): {', '.join(SECTIONS)}, or an "
                        "id section:name from --list; the earlier rows in --out are kept")
    p.add_argument("--camvid", default=None,
                   help="CamVid (pack) folder for the short search (default: $GASGNN_CAMVID; else the built-in data)")
    p.add_argument("--genotype", default=None,
                   help="genotype JSON or reference name timed as the derived network (default: random, seed 0)")
    p.add_argument("--reference", default="hand_light",
                   help="hand-designed reference network timed beside it (default: %(default)s)")
    p.add_argument("--max-row-s", type=float, default=None,
                   help="clip every row's timeout (but the preflight's) to this many seconds")
    p.add_argument("--isolation", choices=["fork", "spawn"], default="fork",
                   help="each row in a fork of the suite (starts in ~0.1 s) or a fresh interpreter (~4 s) "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads in each row (default: 1 in a "
                                                              "dry run, torch's default on the GPU)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier result in --out")
    p.add_argument("--list", action="store_true", help="print the rows with their expected seconds and exit")
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--kill-at", type=float, default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.list:
        total = 0.0
        for r in ROWS:
            total += r.expected_s
            print(f"{r.id:<44} expected {r.expected_s:5.0f} s  (cumulative {total:4.0f} s, cap {r.cap_s:.0f} s)")
        return 0
    if args.threads is None and args.dry_run:
        args.threads = 1
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports Triton: kernels run on the CPU
    else:
        os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels on the GPU
    if args.row:  # a spawned row (--isolation spawn, and the preflight)
        work = args.work or Path(".")
        return run_row(args.row, Ctx(dry=args.dry_run, work=work, camvid=args.camvid, genotype=args.genotype,
                                     reference=args.reference, threads=args.threads), args.result,
                       args.kill_at)
    if args.out is None:
        p.error("--out is required")
    if args.budget_s <= 0:
        p.error(f"--budget-s must be > 0, got {args.budget_s}")
    try:
        rows = _select(args.only)
        args.work = args.work or args.out / "work"
        args.out.mkdir(parents=True, exist_ok=True)
        if args.camvid and not (Path(args.camvid) / "train.txt").is_file():
            print(f"gpu_suite: --camvid {args.camvid} holds no CamVid tree (train.txt); the short search uses the "
                  "built-in synthetic data", file=sys.stderr)
        suite = Suite(args, rows)
    except (ValueError, OSError) as e:
        print(f"gpu_suite: error: {e}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: Any) -> None:
        raise Terminated(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return suite.run()
    except Terminated as e:
        print(f"gpu_suite: stopped by {e}; {suite.json_path} holds the rows done so far", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
