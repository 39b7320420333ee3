"""Train a derived network and a hand-designed reference of the same space with the same budget on
CamVid, and report mIoU and latency side by side (docs/results.md).

    python examples/train_compare.py --genotype runs/sweep/w0.3/genotype.json --reference hand_light \
        --epochs 2 --out runs/compare_train
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gasgnn import GASNet, Genotype
from gasgnn.data import build_dataset, eval_transform, train_transform
from gasgnn.genotype import reference_genotype
from gasgnn.train import TrainConfig, Trainer, benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--genotype", type=Path, required=True)
    p.add_argument("--reference", default="hand_light")
    p.add_argument("--which", choices=["derived", "reference", "both"], default="both",
                   help="train one of them (to run the two in parallel processes) or both")
    p.add_argument("--root", default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--crop", type=int, nargs=2, default=[180, 240])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/compare_train"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    derived = Genotype.load(args.genotype)
    nets = {"derived": derived, "reference": reference_genotype(args.reference, derived.space)}
    names = list(nets) if args.which == "both" else [args.which]
    crop = tuple(args.crop)
    for name in names:
        train = build_dataset("camvid", args.root, "train", transform=train_transform(crop, (0.4, 0.75)))
        val = build_dataset("camvid", args.root, "val", transform=eval_transform(crop))
        cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=0.05, warmup_iters=20, crop_size=crop,
                          scale_range=(0.4, 0.75), val_size=crop, workers=1, seed=0, head="aspp")
        res = Trainer(nets[name], train, val, cfg, out=args.out / name).fit(resume=True)
        m = GASNet(nets[name], head="aspp").eval()
        b = benchmark({name: m}, sizes=[crop], warmup=3, iters=30, rounds=3, progress=False)["results"][0]
        out = {"name": name, "best_miou": res["best_miou"], "train_seconds": res["seconds"],
               "latency_ms": b["latency_ms"]["median"], "params": b["params"], "threads": args.threads}
        (args.out / name / "result.json").write_text(json.dumps(out, indent=2))
        print(json.dumps(out))


if __name__ == "__main__":
    main()
