"""The supplement's op statistics at one latency.

The guide variants end their searches at different predicted latencies (10-17 ms), so counting their
light-weight ops as they are compares latencies as much as guides. Here every searched network is walked
down the latency table to one common target before counting: a GAS variant with
:func:`gasgnn.latency.derive_under_latency` (its own final alpha' decides which edges lose their conv
first), random search with :func:`gasgnn.latency.lighten` (a random walk, as its sampler does). A network
already under the target is counted as it is. Nothing is retrained: these are statistics of the
architectures, as in the supplement.
"""

from __future__ import annotations

import statistics

import torch

from gasgnn import Genotype
from gasgnn.latency import LatencyTable, LatencyTableError, derive_under_latency, lighten
from gasgnn.runner import load_run
from gasgnn.stats import paired_comparison, summarize
from gasgnn.viz import analyze
from repro.jobs import Budget
from repro.protocol import search_dir

STATS = ("light_ops", "large_rf_last4", "diversity_all")


def _load(args, variant: str, seed: int, size: tuple[int, int]) -> tuple[Genotype, torch.Tensor | None] | None:
    """A finished search's genotype (laid out at ``size``) and final alpha' (:obj:`None` for random search);
    :obj:`None` when the search has not finished."""
    d = search_dir(args, variant, seed)
    if not (d / "genotype.json").is_file():
        return None
    run = load_run(d)
    g = Genotype(run.genotype.cells, run.genotype.space.replace(input_size=size))  # the table's deployment size
    if variant == "random":
        return g, None
    return (g, run.alpha_history[-1]) if run.alpha_history is not None else None


def matched_stats(args, budget: Budget, variants: list[str], seeds: list[int], target_ms: float | None = None) -> dict:
    """Walks every finished search of ``variants`` x ``seeds`` to one predicted latency and counts its ops.

    Args:
        args: The reproduction's arguments (``out``, ``size``).
        budget (Budget): Gives the head of the prediction.
        variants (list): Variants; ``"random"`` is walked at random, the others by their alpha'.
        seeds (list): Seeds.
        target_ms (float, optional): The common latency; :obj:`None` takes the lowest of the variants'
            mean predicted latencies, so that most networks are cut and none is far below. (default: :obj:`None`)

    Returns:
        dict: ``target_ms``, ``records`` (one per network: ``before_ms``, ``predicted_ms``, ``cut_ms`` and
        the statistics, or ``error``) and ``rows`` (per variant: ``n`` and a summary of each).
    """
    table = LatencyTable.load(args.out / "latency_table.json")
    size = tuple(args.size)
    kw = {"head": budget.head, "head_channels": budget.head_channels}
    nets = {}
    for v in variants:
        for s in seeds:
            got = _load(args, v, s, size)
            if got is not None:
                nets[(v, s)] = (*got, float(table.predict(got[0], **kw)))
    if not nets:
        return {"target_ms": target_ms, "records": [], "rows": []}
    if target_ms is None:
        means = [statistics.fmean(p for (v2, _), (_, _, p) in nets.items() if v2 == v) for v in variants
                 if any(v2 == v for v2, _ in nets)]
        target_ms = min(means)
    recs = []
    for (v, s), (g, alpha, before) in nets.items():
        rec = {"network": v, "seed": s, "before_ms": before}
        try:
            if alpha is None:
                out = lighten(g, table, target_ms, generator=torch.Generator().manual_seed(s), **kw)
                if out is None:
                    raise LatencyTableError(f"no random walk of {v}_s{s} reaches {target_ms:.2f} ms")
            else:
                out = derive_under_latency(g.space, alpha, table, target_ms, genotype=g, **kw)
        except LatencyTableError as e:
            recs.append({**rec, "error": str(e)})
            continue
        m, pred = out
        rec.update(predicted_ms=pred, cut_ms=before - pred)
        rec.update({k: float(x) for k, x in analyze(m).items() if k in STATS})
        recs.append(rec)
    ok = {(r["network"], r["seed"]): r for r in recs if "error" not in r}
    rows = []
    for v in variants:
        mine = {s: r for (v2, s), r in ok.items() if v2 == v}
        if not mine:
            continue
        row = {"network": v, "n": len(mine), **{k: summarize([r[k] for r in mine.values()]).to_dict()
                                                for k in ("predicted_ms", "cut_ms", *STATS)}}
        common = sorted(s for s in mine if ("random", s) in ok)
        if v != "random" and len(common) >= 2:  # the supplement's comparison: light-weight ops against random
            c = paired_comparison([mine[s]["light_ops"] for s in common],
                                  [ok["random", s]["light_ops"] for s in common])
            row["light_ops_vs_random"] = {"seeds": common, **c.to_dict()}
        rows.append(row)
    return {"target_ms": target_ms, "records": recs, "rows": rows}


def matched_table(m: dict) -> str:
    """The markdown table of :func:`matched_stats`."""
    def ms(x: dict, nd: int = 1) -> str:
        return f"{x['mean']:.{nd}f} ± {x['std']:.{nd}f}"

    lines = [f"Every searched network walked down to {m['target_ms']:.2f} ms predicted (GAS variants by their "
             "alpha', random search at random):", "",
             "| search | n | predicted ms | cut ms | light-weight ops | Δ vs random [95 % CI] | paired t p | "
             "large-RF ops, last 4 | diversity |",
             "|---" * 9 + "|"]
    for r in m["rows"]:
        c = r.get("light_ops_vs_random")
        diff = "-" if c is None else f"{c['mean_diff']:+.1f} [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]"
        p = "-" if c is None else f"{c['p_t']:.3f}"
        lines.append(f"| {r['network']} | {r['n']} | {ms(r['predicted_ms'], 2)} | {ms(r['cut_ms'], 2)} | "
                     f"{ms(r['light_ops'])} | {diff} | {p} | {ms(r['large_rf_last4'])} | {ms(r['diversity_all'], 2)} |")
    errors = [r["error"] for r in m["records"] if "error" in r]
    return "\n".join(lines + [f"- not matched: {e}" for e in errors]) + "\n"
