"""The supplement's Table 1 on CamVid: the ASPP and the PPM head at equal channels on the same searched
networks.

Every ``--default`` network of the comparison's seeds is trained twice from scratch at the chosen budget's
epochs, once with each head at ``--heads-channels`` channels, and evaluated on the test split; the seeds
pair the two heads. Both heads of every network are then timed side by side (interleaved rounds, batch 1,
``--heads-size``) in eager PyTorch and in ONNX Runtime. The supplement reports ASPP 72.4 mIoU at 108.4 FPS
and PPM 72.5 at 114.1 FPS on Cityscapes val (Titan Xp); these are CPU-scale CamVid numbers, so only the
differences and the ratios can be set beside them.
"""

from __future__ import annotations

import torch

from gasgnn import GASNet, Genotype
from gasgnn.stats import paired_comparison, summarize
from gasgnn.train import benchmark
from gasgnn.utils import read_json
from repro.jobs import Budget, Job
from repro.protocol import search_dir, train_dir, train_jobs

HEADS = ("aspp", "ppm")
#: The supplement's Table 1 (Cityscapes val, Titan Xp).
SUPPLEMENT = {"aspp": {"miou": 72.4, "fps": 108.4}, "ppm": {"miou": 72.5, "fps": 114.1}}


def head_budgets(args, budget: Budget) -> dict[str, Budget]:
    """Both heads at equal channels and the budget's epochs."""
    return {h: Budget(h, args.heads_channels, budget.epochs) for h in HEADS}


def networks(args) -> list[tuple[str, int, object]]:
    return [(args.default, s, search_dir(args, args.default, s) / "genotype.json") for s in args.seeds]


def jobs(args, budget: Budget) -> list[Job]:
    """The trainings of Table 1 (seed-major, both heads of a seed together)."""
    nets = networks(args)
    out = []
    for n in nets:
        for b in head_budgets(args, budget).values():
            out += train_jobs(args, [n], b)
    return out


def table1(args, budget: Budget, time_networks: bool = True) -> dict:
    """Reads the trainings, compares the heads paired by seed and times both heads of every network.

    Returns:
        dict: ``network``, ``channels``, ``epochs``, ``records`` (``head``, ``seed``, ``test_miou``, ``val_miou``),
        ``heads`` (per head: ``test_miou`` summary and, when timed, ``fps`` per backend), ``ppm_minus_aspp``
        (paired test mIoU difference), ``fps_ratio`` (per backend: PPM FPS / ASPP FPS over the networks),
        ``size`` and ``supplement``.
    """
    bs = head_budgets(args, budget)
    recs = []
    for name, seed, _ in networks(args):
        for h, b in bs.items():
            p = train_dir(args, b, name, seed) / "result.json"
            if p.is_file():
                r = read_json(p)
                recs.append({"head": h, "seed": seed, "test_miou": 100 * r["eval"]["miou"],
                             "val_miou": 100 * r["train"]["best_miou"]})
    out = {"network": args.default, "channels": args.heads_channels, "epochs": budget.epochs,
           "size": list(args.heads_size), "records": recs, "heads": {}, "supplement": SUPPLEMENT}
    for h in HEADS:
        xs = [r["test_miou"] for r in recs if r["head"] == h]
        out["heads"][h] = {"test_miou": summarize(xs).to_dict() if xs else None}
    by = {h: {r["seed"]: r["test_miou"] for r in recs if r["head"] == h} for h in HEADS}
    common = sorted(set(by["aspp"]) & set(by["ppm"]))
    if len(common) >= 2:
        c = paired_comparison([by["ppm"][s] for s in common], [by["aspp"][s] for s in common])
        out["ppm_minus_aspp"] = {"seeds": common, **c.to_dict()}
    if time_networks and common:
        out.update(_speed(args, common))
    return out


def _speed(args, seeds: list[int]) -> dict:
    """FPS of both heads of every network in eager PyTorch and ONNX Runtime, timed side by side."""
    torch.set_num_threads(args.threads)
    size = tuple(args.heads_size)
    nets = {}
    for s in seeds:
        g = Genotype.load(search_dir(args, args.default, s) / "genotype.json")
        for h in HEADS:
            nets[f"s{s}_{h}"] = GASNet(g, g.space.replace(input_size=size), head=h,
                                       head_channels=args.heads_channels).eval()
    res = benchmark(nets, sizes=[size], backends=["torch", "onnxruntime"], warmup=3, iters=args.bench_iters,
                    rounds=4, progress=True)
    fps = {(r["model"], r["backend"]): r["fps"] for r in res["results"]}
    backends = sorted({b for _, b in fps})
    per_head = {h: {b: summarize([fps[f"s{s}_{h}", b] for s in seeds if (f"s{s}_{h}", b) in fps]).to_dict()
                    for b in backends} for h in HEADS}
    ratio = {b: summarize([fps[f"s{s}_ppm", b] / fps[f"s{s}_aspp", b] for s in seeds
                           if (f"s{s}_ppm", b) in fps and (f"s{s}_aspp", b) in fps]).to_dict() for b in backends}
    return {"fps": per_head, "fps_ratio": ratio, "backends": backends,
            "skipped": [f"{x['backend']}: {x['reason']}" for x in res.get("skipped", [])]}


def table1_table(t: dict) -> str:
    """The markdown table of :func:`table1`, beside the supplement's numbers."""
    def ms(x: dict | None, nd: int = 2) -> str:
        return "-" if not x else f"{x['mean']:.{nd}f} ± {x['std']:.{nd}f}"

    backends = t.get("backends", [])
    head = "| head | n | test mIoU | " + " | ".join(f"FPS ({b}, {t['size'][0]}x{t['size'][1]})" for b in backends)
    lines = [head + " | supplement mIoU | supplement FPS |", "|---" * (5 + len(backends)) + "|"]
    for h in HEADS:
        r = t["heads"][h]
        n = sum(1 for x in t["records"] if x["head"] == h)
        fps = " | ".join(ms(t.get("fps", {}).get(h, {}).get(b), 1) for b in backends)
        sup = t["supplement"][h]
        lines.append(f"| {h} {t['channels']} | {n} | {ms(r['test_miou'])} | " + (fps + " | " if fps else "")
                     + f"{sup['miou']} | {sup['fps']} |")
    c = t.get("ppm_minus_aspp")
    if c:
        diff = f"{c['mean_diff']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}], p {c['p_t']:.3f}"
        ratios = "".join(f"x{t['fps_ratio'][b]['mean']:.3f} | " for b in backends)
        a, p = SUPPLEMENT["aspp"], SUPPLEMENT["ppm"]
        sup = p["miou"] - a["miou"], p["fps"] / a["fps"]
        lines.append(f"| PPM - ASPP (paired) | {c['n']} | {diff} | {ratios}{sup[0]:+.1f} | x{sup[1]:.3f} |")
    return "\n".join(lines) + "\n"
