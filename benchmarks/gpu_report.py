"""``gpu_suite.md``: the GPU suite's result as markdown tables (the layout of docs/benchmarks.md's GPU section).

    python benchmarks/gpu_report.py runs/gpu/gpu_suite.json      # prints the tables again
"""

from __future__ import annotations

import json
import sys
from typing import Any

PENDING = "not run"


def _f(v: Any, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def _by_id(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in state.get("rows", [])}


def _ok(rows: dict[str, dict[str, Any]], section: str) -> list[dict[str, Any]]:
    return [r for r in rows.values() if r["section"] == section and r["status"] == "ok"]


def _main_table(state: dict[str, Any], rows: dict[str, dict[str, Any]], pending: str) -> list[str]:
    out = ["| # | row | status | seconds (expected) | result |", "|---:|---|---|---|---|"]
    planned = state.get("planned") or list(rows)
    expected = state.get("expected", {})
    for i, rid in enumerate(planned, 1):
        r = rows.get(rid)
        if r is None:
            exp = expected.get(rid)
            out.append(f"| {i} | `{rid}` | {pending} | - ({_f(exp, '.0f')}) | |")
            continue
        text = (r.get("figures") or {}).get("summary") or (r.get("error") or "").split("\n")[0]
        text = text.replace("|", "/")[:160]
        out.append(f"| {i} | `{rid}` | {r['status']} | {r['seconds']:.1f} ({r['expected_s']:.0f}) | {text} |")
    return out


def _kernels(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| dtype | Triton fwd GB/s | Triton fwd+bwd GB/s | reference fwd GB/s | reference fwd+bwd GB/s | "
           "Triton fwd % of peak | device copy GB/s | peak GB/s |", "|---|---|---|---|---|---|---|---|"]
    for r in _ok(rows, "kernels"):
        f = r["figures"]
        if "triton" not in f:
            continue
        t, ref = f["triton"], f["reference"]
        out.append(f"| {f['dtype']} | {t['fwd_gbps']:.0f} | {t['fwdbwd_gbps']:.0f} | {ref['fwd_gbps']:.0f} | "
                   f"{ref['fwdbwd_gbps']:.0f} | {_f(f.get('triton_fwd_pct_of_peak'), '.0f')} | "
                   f"{_f(f.get('copy_gbps'), '.0f')} | {_f(f.get('peak_gbps'), '.0f')} |")
    return out


def _search_step(rows: dict[str, dict[str, Any]]) -> list[str]:
    ok = _ok(rows, "search_step")
    naive = {r["figures"]["amp"]: r["figures"]["median_ms"] for r in ok if r["figures"]["variant"] == "naive"}
    out = ["| row | space | batch, size | precision | kernel | median ms | vs naive | vs eager | peak MiB | "
           "kernels/step | launch calls/step |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        f = r["figures"]
        sp = f["space"]
        space = f"{sp['num_cells']} cells x {sp['num_nodes']} nodes" if isinstance(sp, dict) else "12 cells x 4 nodes"
        vs_naive = "%.2fx" % (naive[f["amp"]] / f["median_ms"]) if f["amp"] in naive else "-"
        vs_eager = "%.2fx" % (f["eager_median_ms"] / f["median_ms"]) if f.get("eager_median_ms") else "-"
        out.append(f"| {r['name']} | {space} | {f['batch']}, {f['size'][0]}x{f['size'][1]} | "
                   f"{'bf16 AMP' if f['amp'] else 'fp32'} | {f['kernel']} | "
                   f"{f['median_ms']:.1f} | {vs_naive} | {vs_eager} | "
                   f"{_f(f.get('peak_mib'), '.0f')} | {_f(f.get('kernels_per_step'), 'd')} | "
                   f"{_f(f.get('launch_calls_per_step'), 'd')} |")
    return out


def _fps(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| size | classes | dtype | backend | network | median ms | FPS | GFLOPs | vs reference |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in _ok(rows, "fps"):
        f = r["figures"]
        for name, n in f["networks"].items():
            vs = f"{n['speedup_vs_reference']:.2f}x" if "speedup_vs_reference" in n else "(reference)"
            h, w = f.get("run_size") or f["size"]
            out.append(f"| {h}x{w} | {f['classes']} | {f['dtype']} | {f['backend']} | {name} | "
                       f"{n['median_ms']:.2f} | {n['fps']:.1f} | {n['gflops']:.1f} | {vs} |")
    return out


def _latency(rows: dict[str, dict[str, Any]]) -> list[str]:
    out = ["| entries | networks | measured ms | predicted ms | Spearman (retest) | Kendall | MAPE % | within 10 % | "
           "band Spearman (retest) | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in _ok(rows, "latency"):
        f = r["figures"]
        m, p = f["measured_range_ms"], f["predicted_range_ms"]
        w = f.get("within_10")
        out.append(f"| {f['entries']} | {f['networks']} | {m[0]:.2f}-{m[1]:.2f} | {p[0]:.2f}-{p[1]:.2f} | "
                   f"{_f(f['spearman'], '.2f')} ({_f(f['retest_spearman'], '.2f')}) | {_f(f['kendall'], '.2f')} | "
                   f"{_f(f['mape'])} | {_f(100 * w if w is not None else None, '.0f')} | "
                   f"{_f(f['band_spearman'], '.2f')} ({_f(f['band_retest_spearman'], '.2f')}) | "
                   f"{f['verdict']['status']} |")
    return out


def render(state: dict[str, Any], pending: str = PENDING) -> str:
    """The markdown of a suite state (``gpu_suite.json``); rows not run yet show ``pending``."""
    rows = _by_id(state)
    dev = state.get("device") or {}
    runs = state.get("runs") or [{}]
    last = runs[-1]
    head = f"# GPU suite: {dev.get('device_name', 'device not known yet')}"
    facts = [f"torch {dev['torch']}" if dev.get("torch") else None, f"CUDA {dev['cuda']}" if dev.get("cuda") else None,
             f"Triton {dev['triton']}" if dev.get("triton") else None,
             f"{last['wall_s']:.0f} s of a {last['budget_s']:.0f} s budget" if last.get("wall_s") is not None else None,
             last.get("started")]
    facts = [x for x in facts if x]
    lines = [head, "", "; ".join(facts) + "."] if facts else [head]
    if state.get("dry_run"):
        lines += ["", "Dry run on the CPU at tiny sizes: it checks that every row runs; its figures mean nothing."]
    if not state.get("finished", True):
        lines += ["", "**Unfinished**: the suite was stopped; the rows below are those done so far."]
    lines += ["", *_main_table(state, rows, pending)]
    for title, table in (("Kernels: node-batched edge mix, bandwidth", _kernels(rows)),
                         ("Search step (architecture + weights)", _search_step(rows)),
                         ("Derived networks, batch 1 (channels_last, cudnn.benchmark)", _fps(rows)),
                         ("Latency table at 720x960, validated on networks spanning its range", _latency(rows))):
        lines += ["", f"## {title}", "", *table]
        if len(table) == 2:
            lines.append("| " + " | ".join([pending] + [""] * (table[0].count("|") - 2)) + " |")
    s = rows.get("search:short_search")
    lines += ["", "## Short search", "", (s["figures"].get("summary") if s and s["status"] == "ok" else pending), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(render(json.load(f)))
