"""The experiments of the reproduction: which runs exist, where they live, and the budget calibration.

Layout under ``--out``::

    latency_table.json                     one table, shared by every search and prediction
    genotypes/{skip_only,hand_light,hand_sep}.json
    search/{variant}_s{seed}/              one search per guide variant and seed (random: random_s{seed})
    sweep/gcn_sim_w{weight}_s{seed}/       the latency-weight sweep's searches
    calib/{budget}/{network}_s{seed}/      calibration trainings
    train/{budget}/{network}_s{seed}/      trainings of the comparison at the chosen budget
"""

from __future__ import annotations

import statistics
from pathlib import Path

from gasgnn.genotype import reference_genotype
from gasgnn.space import SearchSpace
from gasgnn.utils import read_json
from repro.jobs import Budget, Job, search_job, train_job

REFERENCES = ("skip_only", "hand_light", "hand_sep")


def references(args) -> dict[str, Path]:
    """Writes (once) and returns the hand-designed reference genotypes of the protocol's space."""
    gdir = args.out / "genotypes"
    gdir.mkdir(parents=True, exist_ok=True)
    space = SearchSpace(num_cells=args.num_cells, channels=args.channels, input_size=tuple(args.size),
                        num_classes=args.num_classes)
    out = {}
    for ref in REFERENCES:
        out[ref] = gdir / f"{ref}.json"
        if not out[ref].is_file():
            reference_genotype(ref, space).save(out[ref])
    return out


def latency_extra(args) -> list[str]:
    """The searches' latency settings."""
    extra = ["--latency-weight", str(args.weight), "--latency-form", args.latency_form]
    return extra + (["--target-ms", str(args.target_ms)] if args.target_ms is not None else [])


def gas_extra(args, guide: str, weight: float | None = None) -> list[str]:
    extra = latency_extra(args) if weight is None else ["--latency-weight", str(weight), "--latency-form",
                                                        args.latency_form]
    return ["--guide", guide, *extra, "--epochs", str(args.epochs), "--warmup-epochs", str(args.warmup_epochs),
            "--steps-per-epoch", str(args.steps_per_epoch), "--a-lr", str(args.a_lr)]


def search_dir(args, variant: str, seed: int) -> Path:
    return args.out / "search" / f"{variant}_s{seed}"


def gas_search_jobs(args, variants: list[str], seeds: list[int]) -> list[Job]:
    """The GAS searches (every variant but ``random``), seed-major so early seeds complete first."""
    return [search_job(args, search_dir(args, v, s), gas_extra(args, v), s)
            for s in seeds for v in variants if v != "random"]


def random_target(args, seeds: list[int]) -> float:
    """Random search's latency target: the mean predicted latency of the ``--default`` guide's networks of
    ``seeds``."""
    preds = [read_json(search_dir(args, args.default, s) / "result.json")["search"]["predicted_latency_ms"]
             for s in seeds]
    return statistics.fmean(preds)


def random_jobs(args, seeds: list[int]) -> list[Job]:
    """Random search matched in latency to the same seed's ``--default`` network: samples drawn uniformly and
    walked down to its predicted latency (``--random-sampler lighten``), ``--random-samples`` x
    ``--random-steps`` weight steps."""
    jobs = []
    for s in seeds:
        extra = ["--random", "--random-sampler", "lighten", "--samples", str(args.random_samples),
                 "--steps-per-sample", str(args.random_steps), "--target-ms", f"{random_target(args, [s]):.4f}"]
        jobs.append(search_job(args, search_dir(args, "random", s), extra, s))
    return jobs


def networks(args, variants: list[str], seeds: list[int], refs: dict[str, Path]) -> list[tuple[str, int, Path]]:
    """``(network, seed, genotype)`` of every comparison training: each variant's searched network and the
    ``skip_only`` / ``hand_light`` references, per seed."""
    out = [(v, s, search_dir(args, v, s) / "genotype.json") for s in seeds for v in variants]
    out += [(r, s, refs[r]) for s in seeds for r in ("skip_only", "hand_light")]
    return out


def train_dir(args, budget: Budget, name: str, seed: int, where: str = "train") -> Path:
    """A training's directory; the comparison reuses a calibration training of the same network, seed and
    budget (the same command) instead of repeating it."""
    calib = args.out / "calib" / budget.name / f"{name}_s{seed}"
    return calib if where == "train" and calib.is_dir() else args.out / where / budget.name / f"{name}_s{seed}"


def train_jobs(args, nets: list[tuple[str, int, Path]], budget: Budget, where: str = "train") -> list[Job]:
    return [train_job(args, train_dir(args, budget, name, seed, where), g, budget, seed) for name, seed, g in nets]


def sweep_dir(args, weight: float, seed: int) -> Path:
    return args.out / "sweep" / f"gcn_sim_w{weight:g}_s{seed}"


def sweep_jobs(args) -> list[Job]:
    """The latency-weight sweep of ``gcn_sim`` (``--sweep`` weights, ``--sweep-seeds``)."""
    return [search_job(args, sweep_dir(args, w, s), gas_extra(args, "gcn_sim", w), s)
            for s in args.sweep_seeds for w in args.sweep]


# ----------------------------------------------------------------------------------------------------
def calibration_networks(args, refs: dict[str, Path]) -> list[tuple[str, int, Path]]:
    seeds = args.calib_seeds
    return [(n, s, refs[n]) for s in seeds for n in ("skip_only", "hand_light")] + [
        ("gcn_sim", s, search_dir(args, "gcn_sim", s) / "genotype.json") for s in seeds]


def calibration(args, budgets: list[Budget]) -> dict:
    """Reads the calibration trainings and picks the budget.

    The chosen budget is the first of ``budgets`` (cheapest first) at which ``skip_only``'s mean test mIoU
    is below both ``hand_light``'s and the searched networks' by at least ``--calib-margin`` points and by
    more than twice the larger standard deviation of the two; :obj:`None` when none qualifies.
    """
    rows, chosen = [], None
    for b in budgets:
        res: dict[str, list[float]] = {}
        minutes: list[float] = []
        for name, seed, _ in calibration_networks(args, references(args)):
            p = args.out / "calib" / b.name / f"{name}_s{seed}" / "result.json"
            if p.is_file():
                r = read_json(p)
                res.setdefault(name, []).append(100 * r["eval"]["miou"])
                minutes.append(r["train"]["seconds"] / 60)
        row = {"budget": b.name, "head": b.head, "head_channels": b.head_channels, "epochs": b.epochs,
               "test_miou": res, "train_minutes": statistics.fmean(minutes) if minutes else None}
        complete = all(len(res.get(n, [])) == len(args.calib_seeds) for n in ("skip_only", "hand_light", "gcn_sim"))
        if complete:
            def ms(xs: list[float]) -> tuple[float, float]:
                return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0

            (sk, sks), gaps = ms(res["skip_only"]), {}
            for other in ("hand_light", "gcn_sim"):
                m, sd = ms(res[other])
                gaps[other] = {"gap": m - sk, "two_std": 2 * max(sks, sd)}
            row["gaps"] = gaps
            row["separates"] = all(g["gap"] >= args.calib_margin and g["gap"] > g["two_std"] for g in gaps.values())
            if row["separates"] and chosen is None:
                chosen = b.name
        rows.append(row)
    return {"budgets": rows, "chosen": chosen, "seeds": args.calib_seeds, "margin": args.calib_margin}
