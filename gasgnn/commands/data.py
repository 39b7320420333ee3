"""``gasgnn data pack``: a compact CamVid copy (JPEG images, lossless PNG labels) that travels."""

from __future__ import annotations

import argparse
from pathlib import Path

from gasgnn.commands._common import emit_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="dataset tools (pack: a compact CamVid copy)",
        description="Dataset tools. 'gasgnn data pack' writes a compact copy of CamVid.",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    k = dsub.add_parser(
        "pack", help="write a compact CamVid pack: JPEG images, lossless PNG labels, the same list files",
        description=(
            "Re-encodes CamVid (SegNet layout, 182 MB of PNG) into a pack of about 30 MiB at the default quality: "
            "JPEG images, the label masks as optimised 8-bit PNG (lossless), train.txt/val.txt/test.txt "
            "listing the same pairs in the same order, and pack.json (source, quality, the images' mean "
            "absolute difference and PSNR against the originals). The CamVid dataset reads the pack like the "
            "original (--data camvid --root OUT). The pack is written into a temporary folder and renamed into "
            "place when complete. Example: gasgnn data pack --root /data/CamVid --out data_pack/camvid"
        ),
    )
    k.add_argument("--root", type=Path, default=None,
                   help="CamVid root (train/, trainannot/, train.txt, ...) (default: $GASGNN_CAMVID)")
    k.add_argument("--out", type=Path, required=True, help="pack folder to create")
    k.add_argument("--quality", type=int, default=85,
                   help="JPEG quality 1..100: on CamVid 85 gives 29.7 MiB and a mean absolute difference of 2.6 "
                        "grey levels from the original images, 90 gives 36.2 MiB and 2.1 (default: %(default)s)")
    k.add_argument("--workers", type=int, default=None, help="encoding threads (default: up to 4)")
    k.add_argument("--overwrite", action="store_true", help="replace an existing --out (once the new pack is done)")
    k.add_argument("--no-progress", action="store_true", help="no progress bar")
    k.add_argument("--json", action="store_true", help="print the pack's manifest as JSON")
    k.set_defaults(func=run_pack)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_pack(args: argparse.Namespace) -> int:
    from gasgnn.data import pack_camvid

    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    info = pack_camvid(args.root, args.out, quality=args.quality, overwrite=args.overwrite, workers=args.workers,
                       progress=not args.no_progress and not args.json)
    if args.json:
        emit_json({"out": str(args.out), **info})
        return 0
    n = sum(info["splits"].values())
    print(f"{args.out}: {n} images ({', '.join(f'{s} {c}' for s, c in info['splits'].items())}), "
          f"{info['bytes'] / 2**20:.1f} MiB (images {info['image_bytes'] / 2**20:.1f}, labels "
          f"{info['label_bytes'] / 2**20:.1f}); JPEG q={info['quality']}: mean abs difference "
          f"{info['image_mad']:.2f} grey levels, PSNR {info['image_psnr_db']:.1f} dB; labels lossless")
    return 0
