"""A compact copy of CamVid that travels: JPEG images, lossless PNG labels, the same list files.

The SegNet CamVid tree is 182 MB of PNG images. A pack re-encodes the images as JPEG (quality 85 by
default: 26.1 MiB for all 701 images) and re-writes the label masks as optimised 8-bit PNG (lossless:
every label is kept bit for bit, 3.5 MiB), with ``train.txt``, ``val.txt`` and ``test.txt`` listing
the same pairs in the same order (image names end in ``.jpg``). :class:`~gasgnn.data.CamVid` reads a pack
like the original tree::

    from gasgnn.data import CamVid, pack_camvid

    info = pack_camvid("/data/CamVid", "data_pack/camvid")    # {'bytes': ..., 'image_mad': ..., ...}
    train = CamVid("data_pack/camvid", split="train")         # 367 samples, .jpg images

The pack is written into a temporary folder beside ``out`` and renamed into place at the end, so a
killed run leaves no half pack; ``pack.json`` records the source, the quality and how far the JPEG
images are from the originals (mean absolute difference in grey levels and PSNR, over every image).
"""

from __future__ import annotations

import datetime as _dt
import io
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gasgnn.utils import write_json

from .camvid import SPLITS, CamVid, default_camvid_root
from .io import DatasetError, read_image, read_mask

__all__ = ["PACK_FORMAT", "PACK_MANIFEST", "pack_camvid"]

#: ``format`` field of a pack's manifest.
PACK_FORMAT = "gasgnn-camvid-pack"
#: File name of a pack's manifest.
PACK_MANIFEST = "pack.json"
_VERSION = 1


def _encode(sample: Any, split: str, quality: int) -> dict[str, Any]:
    """Encodes one sample; returns the file bytes and the image's distance to the original."""
    image, raw = read_image(sample.image), read_mask(sample.mask)
    if image.shape[:2] != raw.shape[:2]:
        raise DatasetError(f"size mismatch: image {sample.image} is {image.shape[1]}x{image.shape[0]} (WxH) but "
                           f"mask {sample.mask} is {raw.shape[1]}x{raw.shape[0]}", sample.mask)
    if raw.dtype != np.uint8:
        if raw.min() < 0 or raw.max() > 255:
            raise DatasetError(f"mask {sample.mask} has values outside 0..255; CamVid labels are 8-bit", sample.mask)
        raw = raw.astype(np.uint8)
    jpg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(image).save(jpg, "JPEG", quality=quality, optimize=True)
    Image.fromarray(raw).save(png, "PNG", optimize=True)
    # Decode what was written: the image's error is measured, the labels must come back bit for bit.
    back = np.asarray(Image.open(io.BytesIO(jpg.getvalue())).convert("RGB"), dtype=np.float64)
    if not np.array_equal(np.asarray(Image.open(io.BytesIO(png.getvalue()))), raw):
        raise DatasetError(f"mask {sample.mask}: the PNG written does not read back identical", sample.mask)
    diff = back - image
    return {"split": split, "stem": sample.image.stem, "mask_stem": sample.mask.stem, "jpg": jpg.getvalue(),
            "png": png.getvalue(), "abs": float(np.abs(diff).sum()), "sq": float((diff ** 2).sum()),
            "values": int(diff.size)}


def _publish_dir(tmp: Path, out: Path) -> None:
    """Renames ``tmp`` to ``out``; an existing ``out`` is moved aside first and removed only afterwards."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        old.rmdir()
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def pack_camvid(
    root: str | os.PathLike | None,
    out: str | os.PathLike,
    quality: int = 85,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Writes a compact CamVid pack (JPEG images, PNG labels, list files, ``pack.json``) of all three splits.

    Args:
        root (str or PathLike, optional): The CamVid tree (SegNet layout); :obj:`None` uses
            ``$GASGNN_CAMVID``.
        out (str or PathLike): The pack's folder (created; must not exist unless ``overwrite``).
        quality (int, optional): JPEG quality 1..100. (default: :obj:`85`)
        overwrite (bool, optional): Replace an existing ``out`` (only once the new pack is complete).
            (default: :obj:`False`)
        workers (int, optional): Encoding threads; :obj:`None`: up to 4. (default: :obj:`None`)
        progress (bool, optional): Progress bar. (default: :obj:`True`)

    Returns:
        dict: The manifest written to ``out/pack.json``: ``format``, ``version``, ``source``, ``quality``,
        ``splits`` (images per split), ``bytes`` (the pack's size), ``image_bytes``, ``label_bytes``,
        ``image_mad`` (mean absolute difference from the original images, grey levels 0..255),
        ``image_psnr_db`` and ``labels_lossless``.

    Raises:
        ValueError: bad ``quality``, ``out`` exists without ``overwrite``, or ``out`` inside ``root``.
        DatasetError: ``root`` is not a CamVid tree, or a sample is missing or corrupt (naming it).
    """
    from tqdm.auto import tqdm

    if not 1 <= int(quality) <= 100:
        raise ValueError(f"--quality must be in 1..100, got {quality}")
    src = Path(root).expanduser() if root is not None else default_camvid_root()
    out = Path(out).expanduser()
    if out.exists() and not overwrite:
        raise ValueError(f"--out {out} exists; pass --overwrite to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a pack folder")
    if src.resolve() == out.resolve() or src.resolve() in out.resolve().parents:
        raise ValueError(f"--out {out} is inside the CamVid root {src}; write the pack elsewhere")
    samples = {s: CamVid(src, split=s).samples for s in SPLITS}  # checks the layout and that every file exists
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    workers = workers or min(4, os.cpu_count() or 1)
    total = sum(len(v) for v in samples.values())
    stats = {"abs": 0.0, "sq": 0.0, "values": 0, "image_bytes": 0, "label_bytes": 0}
    try:
        bar = tqdm(total=total, desc="packing CamVid", unit="img", disable=not progress)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for split, items in samples.items():
                (tmp / split).mkdir()
                (tmp / f"{split}annot").mkdir()
                lines = []
                for r in pool.map(lambda s, split=split: _encode(s, split, int(quality)), items):
                    (tmp / split / f"{r['stem']}.jpg").write_bytes(r["jpg"])
                    (tmp / f"{split}annot" / f"{r['mask_stem']}.png").write_bytes(r["png"])
                    lines.append(f"/SegNet/CamVid/{split}/{r['stem']}.jpg "
                                 f"/SegNet/CamVid/{split}annot/{r['mask_stem']}.png")
                    for k in ("abs", "sq", "values"):
                        stats[k] += r[k]
                    stats["image_bytes"] += len(r["jpg"])
                    stats["label_bytes"] += len(r["png"])
                    bar.update()
                (tmp / f"{split}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        bar.close()
        n = max(stats["values"], 1)
        mse = stats["sq"] / n
        manifest = {
            "format": PACK_FORMAT, "version": _VERSION, "source": str(src), "quality": int(quality),
            "image_format": "jpeg", "label_format": "png (8-bit, lossless)",
            "splits": {s: len(v) for s, v in samples.items()},
            "image_bytes": stats["image_bytes"], "label_bytes": stats["label_bytes"],
            "image_mad": stats["abs"] / n, "image_psnr_db": 10 * math.log10(255.0 ** 2 / mse) if mse > 0 else math.inf,
            "labels_lossless": True,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(tmp / PACK_MANIFEST, manifest)
        manifest["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        write_json(tmp / PACK_MANIFEST, manifest)
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
