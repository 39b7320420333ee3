"""Networks as shareable artifacts: ``GASNet.save_pretrained(dir)`` and ``GASNet.from_pretrained(dir or hub id)``.

The directory follows the Hugging Face Hub convention of ``PyTorchModelHubMixin`` (as
segmentation_models_pytorch uses it: ``config.json`` + ``model.safetensors`` + a ``README.md`` model card),
so it uploads to the Hub as it is (``huggingface-cli upload user/repo DIR``):

.. code-block:: text

    DIR/
      config.json        format + version, head, head channels and options, aux, search space, classes
                         (names, palette, ignore index), metadata, genotype_sha1, weights_sha256
      genotype.json      the architecture, versioned, as Genotype.save writes it
      model.safetensors  the weights (the full state dict, auxiliary head included when there is one)
      README.md          the model card: cell drawing, genotype hash, device, latency backend, latency
                         table hash, predicted and measured latency, mIoU and dataset ("not measured" if unknown)
      network.png        the cell drawing, when a drawing function was given

Local directories need no network. A Hub id (``user/repo``) is fetched with ``huggingface_hub`` when it is
installed (``pip install 'gasgnn[hub]'``, imported only then). Weights need ``safetensors`` (the same extra);
without it saving and loading raise :class:`~gasgnn.utils.MissingExtraError` naming the extra: there is
no pickle fallback, because a ``torch.load`` of a downloaded pickle can run code, which is what
safetensors exists to prevent.

:meth:`PretrainedMixin.from_pretrained` validates everything and names the file and field of the first
problem: a missing file, a config field of the wrong type, a genotype whose hash is not the config's, weights
that were changed after saving (SHA-256), missing, unexpected or misshapen tensors.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gasgnn.genotype import Genotype, GenotypeError
from gasgnn.models.card import check_classes, check_metadata, render_card
from gasgnn.space import SearchSpace, SpaceError
from gasgnn.utils import atomic_write_bytes, atomic_write_text, count_params, import_extra, read_json, write_json

__all__ = [
    "PRETRAINED_FORMAT", "PRETRAINED_VERSION", "PRETRAINED_FILES", "GenotypeDrawer", "PretrainedMixin",
    "read_pretrained_config", "resolve_pretrained", "save_pretrained",
]

PRETRAINED_FORMAT = "gasgnn-pretrained"
PRETRAINED_VERSION = 1
CONFIG_NAME, GENOTYPE_NAME, WEIGHTS_NAME = "config.json", "genotype.json", "model.safetensors"
CARD_NAME, DRAWING_NAME = "README.md", "network.png"
#: The files a pretrained directory may hold.
PRETRAINED_FILES = (CONFIG_NAME, GENOTYPE_NAME, WEIGHTS_NAME, CARD_NAME, DRAWING_NAME)

#: ``draw(genotype, path)`` writes a drawing of the network to ``path`` (a ``.png``), e.g.
#: :func:`gasgnn.viz.draw_network` (models sit below viz, so the drawing function is passed in).
GenotypeDrawer = Callable[[Genotype, Path], Any]

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
# config.json fields and their JSON types
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "genotype_sha1": str, "weights_sha256": str, "num_classes": int, "head": str, "head_channels": int,
    "head_kwargs": dict, "aux": bool, "space": dict, "classes": dict, "metadata": dict,
}


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gasgnn")
    except PackageNotFoundError:
        return None


def _architecture(genotype: Genotype) -> str:
    reds = [str(k) for k, c in enumerate(genotype.cells) if c.reduction]
    ops = collections.Counter(genotype.ops()).most_common()
    return (f"{len(genotype)} (reduction: {', '.join(reds) or 'none'}); {sum(n for _, n in ops)} ops: "
            + ", ".join(f"{o} x{n}" for o, n in ops))


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: is a file, not a directory")
    names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not names:
        return
    if not overwrite:
        raise ValueError(f"{out}: not empty; pass overwrite=True (--overwrite) to replace the network in it, "
                         f"or choose another directory")
    others = [n for n in names if n not in PRETRAINED_FILES and not n.startswith(".")]
    if others:  # overwrite replaces a pretrained network, never a folder of other files
        raise ValueError(f"{out}: holds files that are not a pretrained network ({', '.join(others[:3])}); "
                         f"even with overwrite it is not replaced, choose another directory")


def _publish_dir(tmp: Path, out: Path) -> None:
    """Moves the finished directory ``tmp`` to ``out``; an earlier ``out`` is removed only once ``tmp`` is in."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_pretrained(
    model: nn.Module,
    save_directory: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    ignore_index: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    draw: GenotypeDrawer | None = None,
    overwrite: bool = False,
) -> Path:
    """Writes a :class:`~gasgnn.models.GASNet` as a pretrained directory (see the module docstring).

    The directory is written in full beside ``save_directory`` and moved into place at the end, so a killed
    save leaves the earlier directory (or none), never a partial one.

    Args:
        model (GASNet): The network (its weights, auxiliary head included, are saved as they are).
        save_directory (str or PathLike): The directory; created, or empty, or (with ``overwrite``) one
            holding a pretrained network.
        classes (sequence of str, optional): Class names, one per output. (default: :obj:`None`)
        palette (sequence of RGB triples, optional): Colour per class. (default: :obj:`None`)
        ignore_index (int, optional): Label of void pixels in the training masks. (default: :obj:`None`)
        metadata (mapping, optional): Fields of :data:`~gasgnn.models.CARD_FIELDS` (dataset, mIoU, device,
            latency backend, table hash, predicted and measured latency, ...). (default: :obj:`None`)
        draw (callable, optional): ``draw(genotype, path)`` draws the cells into ``network.png``
            (:func:`gasgnn.viz.draw_network`); :obj:`None`, or a drawing that fails, leaves a note in the
            card instead. (default: :obj:`None`)
        overwrite (bool, optional): Replace the pretrained network already in ``save_directory``.
            (default: :obj:`False`)

    Returns:
        Path: ``save_directory``.

    Raises:
        ValueError: naming the argument or field, for a bad value or a directory that is not empty.
        MissingExtraError: when safetensors is not installed.
    """
    out = Path(save_directory)
    for attr in ("genotype", "space", "head_name", "head_channels", "head_kwargs", "aux_index"):
        if not hasattr(model, attr):
            raise ValueError(f"save_pretrained: {type(model).__name__} is not a GASNet (no '{attr}')")
    _check_target(out, overwrite)
    genotype: Genotype = model.genotype
    space: SearchSpace = model.space
    meta = check_metadata(metadata)
    cls = check_classes(space.num_classes, classes, palette, ignore_index)
    try:
        head_kwargs = json.loads(json.dumps(dict(model.head_kwargs)))
    except TypeError as e:
        raise ValueError(f"save_pretrained: head options {model.head_kwargs!r} are not JSON values ({e})") from None
    st = import_extra("safetensors.torch", "hub", f"save_pretrained: {out / WEIGHTS_NAME}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = st.save(state, metadata={"format": "pt"})
    config: dict[str, Any] = {
        "format": PRETRAINED_FORMAT, "version": PRETRAINED_VERSION, "library": "gasgnn",
        "gasgnn_version": _version(), "architecture": type(model).__name__,
        "genotype_sha1": genotype.sha1(), "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "num_classes": space.num_classes, "head": model.head_name, "head_channels": int(model.head_channels),
        "head_kwargs": head_kwargs, "aux": model.aux_index is not None, "space": space.to_dict(),
        "classes": cls, "metadata": meta, "drawing": None,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmpdir", dir=out.parent))
    try:
        genotype.save(tmp / GENOTYPE_NAME)
        atomic_write_bytes(tmp / WEIGHTS_NAME, weights)
        note = "no drawing function given: save with draw=gasgnn.viz.draw_network"
        if draw is not None:
            try:
                draw(genotype, tmp / DRAWING_NAME)
                if (tmp / DRAWING_NAME).is_file():
                    config["drawing"] = DRAWING_NAME
                else:
                    note = f"the drawing function wrote no {DRAWING_NAME}"
            except Exception as e:  # a drawing is decoration: the network is saved without it, with the reason
                note = f"drawing failed: {type(e).__name__}: {e}"
                warnings.warn(f"save_pretrained: {note}; the card says so", stacklevel=2)
        write_json(tmp / CONFIG_NAME, config)
        card = render_card(config, _architecture(genotype), count_params(model), config["drawing"], note)
        atomic_write_text(tmp / CARD_NAME, card)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 directories; give the usual permissions
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def resolve_pretrained(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """The local directory of a pretrained network: ``name_or_path`` itself, or a Hub id's downloaded copy.

    Args:
        name_or_path (str or PathLike): A directory, or a Hugging Face Hub id ``user/repo`` (used only when
            no such directory exists).
        revision (str, optional): Hub branch, tag or commit. (default: :obj:`None`)
        cache_dir (str or PathLike, optional): Hub cache folder. (default: :obj:`None`)
        local_files_only (bool, optional): Only the Hub cache, no download. (default: :obj:`False`)
        token (str or bool, optional): Hub token. (default: :obj:`None`)

    Returns:
        Path: A directory holding ``config.json``, ``genotype.json`` and ``model.safetensors``.

    Raises:
        FileNotFoundError: for a path that does not exist and is no Hub id.
        MissingExtraError: for a Hub id without huggingface_hub installed.
        ValueError: when the Hub download fails.
    """
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if p.exists():
        raise ValueError(f"{p}: is a file; from_pretrained takes the directory that save_pretrained wrote")
    s = os.fspath(name_or_path)
    if not _HUB_ID.match(s):
        raise FileNotFoundError(f"pretrained directory not found: {p}")
    hub = import_extra("huggingface_hub", "hub", f"{s}: no such directory; as a Hub id")
    try:
        local = hub.snapshot_download(repo_id=s, revision=revision, cache_dir=cache_dir, token=token,
                                      local_files_only=local_files_only, allow_patterns=list(PRETRAINED_FILES))
    except Exception as e:  # not found, offline, gated, ...: the hub's own message, on one line
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{s}: no such directory, and the Hub download failed ({type(e).__name__}: {msg})"
                         ) from None
    return Path(local)


def read_pretrained_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Reads and validates ``config.json`` of a pretrained directory.

    Args:
        directory (str or PathLike): The directory (local).

    Returns:
        dict: The config, with ``classes`` and ``metadata`` completed (every field present).

    Raises:
        FileNotFoundError: when ``config.json`` is missing.
        ValueError: naming the file and the field.
    """
    path = Path(directory) / CONFIG_NAME
    cfg = read_json(path, "pretrained config")
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    if cfg.get("format") != PRETRAINED_FORMAT:
        raise ValueError(f"{path}: format: expected '{PRETRAINED_FORMAT}', got {cfg.get('format')!r} "
                         f"(not a directory written by save_pretrained)")
    if cfg.get("version") != PRETRAINED_VERSION:
        raise ValueError(f"{path}: version: unsupported {cfg.get('version')!r} (this gasgnn reads "
                         f"{PRETRAINED_VERSION})")
    for key, typ in _FIELDS.items():
        if key not in cfg:
            raise ValueError(f"{path}: missing field '{key}'")
        v = cfg[key]
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
            raise ValueError(f"{path}: {key}: expected {typ.__name__ if isinstance(typ, type) else typ}, got {v!r}")
    if cfg["num_classes"] < 1 or cfg["head_channels"] < 1:
        key = "num_classes" if cfg["num_classes"] < 1 else "head_channels"
        raise ValueError(f"{path}: {key}: must be positive, got {cfg[key]}")
    try:
        space = SearchSpace.from_dict(cfg["space"])
    except SpaceError as e:
        raise ValueError(f"{path}: space: {e}") from None
    if space.num_classes != cfg["num_classes"]:
        raise ValueError(f"{path}: num_classes is {cfg['num_classes']} but space.num_classes is {space.num_classes}")
    c = cfg["classes"]
    cfg["classes"] = check_classes(cfg["num_classes"], c.get("names"), c.get("palette"), c.get("ignore_index"),
                                   where=f"{path}: classes")
    cfg["metadata"] = check_metadata(cfg["metadata"], where=f"{path}: metadata")
    return cfg


def _check_state(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], where: Path,
                 built_from: str) -> None:
    missing = [k for k in own if k not in state]
    if missing:
        raise ValueError(f"{where}: tensor '{missing[0]}' is missing ({len(missing)} in all) for the network "
                         f"{built_from} describes")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise ValueError(f"{where}: unexpected tensor '{unexpected[0]}' ({len(unexpected)} in all): the network "
                         f"{built_from} describes has no such weight")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{where}: tensor '{k}' has shape {tuple(v.shape)}, the network {built_from} "
                             f"describes has {tuple(own[k].shape)}")


def load_pretrained(
    cls: type[nn.Module],
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    aux: bool | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> nn.Module:
    """Builds ``cls`` (with GASNet's constructor) from a pretrained directory; see
    :meth:`PretrainedMixin.from_pretrained`."""
    directory = resolve_pretrained(name_or_path, revision=revision, cache_dir=cache_dir,
                                   local_files_only=local_files_only, token=token)
    cfg = read_pretrained_config(directory)
    cpath, gpath, wpath = directory / CONFIG_NAME, directory / GENOTYPE_NAME, directory / WEIGHTS_NAME
    if not gpath.is_file():
        raise FileNotFoundError(f"{gpath}: genotype file missing")
    genotype = Genotype.load(gpath)
    sha = genotype.sha1()
    if sha != cfg["genotype_sha1"]:
        raise ValueError(f"{gpath}: the genotype hashes to {sha}, but {cpath} names genotype_sha1 "
                         f"{cfg['genotype_sha1']} (the genotype was changed after saving)")
    if aux and not cfg["aux"]:
        raise ValueError(f"{cpath}: aux is false, so there is no auxiliary head to load")
    with_aux = cfg["aux"] if aux is None else bool(aux)
    try:
        model = cls(genotype, space=SearchSpace.from_dict(cfg["space"]), head=cfg["head"],
                    head_channels=cfg["head_channels"], aux_head=with_aux, **cfg["head_kwargs"])
    except KeyError as e:  # an unregistered head (RegistryError)
        raise ValueError(f"{cpath}: head: {e.args[0] if e.args else e}") from None
    except GenotypeError as e:
        raise ValueError(f"{gpath}: does not fit the space of {cpath}: {e}") from None
    except TypeError as e:
        raise ValueError(f"{cpath}: head_kwargs {cfg['head_kwargs']!r} do not fit head '{cfg['head']}': {e}"
                         ) from None
    if not wpath.is_file():
        raise FileNotFoundError(f"{wpath}: weights file missing")
    data = wpath.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != cfg["weights_sha256"]:
        raise ValueError(f"{wpath}: SHA-256 {digest[:16]}... is not the weights_sha256 of {cpath} "
                         f"({cfg['weights_sha256'][:16]}...): the weights were changed or damaged after saving")
    st = import_extra("safetensors.torch", "hub", f"from_pretrained: {wpath}")
    try:
        state = st.load(data)
    except Exception as e:  # safetensors raises its own error type for a damaged header
        raise ValueError(f"{wpath}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    if cfg["aux"] and not with_aux:
        state = {k: v for k, v in state.items() if not k.startswith("aux.")}
    _check_state(model.state_dict(), state, wpath, f"{cpath.name} + {gpath.name}")
    model.load_state_dict(state, strict=True)
    model.pretrained_config = cfg
    return model.to(device).eval()


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for :class:`~gasgnn.models.GASNet` (the Hub mixin convention).

    Example::

        net.save_pretrained("gas-camvid", metadata={"dataset": "camvid", "miou": 0.68})
        net = GASNet.from_pretrained("gas-camvid")     # or a Hub id, "user/gas-camvid"
        net.pretrained_config["classes"]["names"]
    """

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        classes: Sequence[str] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        ignore_index: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        draw: GenotypeDrawer | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Writes the network as a pretrained directory; see :func:`~gasgnn.models.pretrained.save_pretrained`.

        Args:
            save_directory (str or PathLike): The directory (new, empty, or with ``overwrite`` a pretrained one).
            classes (sequence of str, optional): Class names. (default: :obj:`None`)
            palette (sequence of RGB triples, optional): Colour per class. (default: :obj:`None`)
            ignore_index (int, optional): Void label of the training masks. (default: :obj:`None`)
            metadata (mapping, optional): Fields of :data:`~gasgnn.models.CARD_FIELDS`. (default: :obj:`None`)
            draw (callable, optional): ``draw(genotype, path)``, e.g. :func:`gasgnn.viz.draw_network`.
                (default: :obj:`None`)
            overwrite (bool, optional): Replace a pretrained network in the directory. (default: :obj:`False`)

        Returns:
            Path: ``save_directory``.
        """
        assert isinstance(self, nn.Module)
        return save_pretrained(self, save_directory, classes=classes, palette=palette, ignore_index=ignore_index,
                               metadata=metadata, draw=draw, overwrite=overwrite)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        aux: bool | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
    ) -> Any:
        """Loads a network that :meth:`save_pretrained` wrote, in eval mode.

        The loaded network carries the validated ``config.json`` as ``pretrained_config`` (class names and
        palette in ``["classes"]``, the card's figures in ``["metadata"]``).

        Args:
            name_or_path (str or PathLike): A local directory, or a Hugging Face Hub id ``user/repo``
                (needs ``pip install 'gasgnn[hub]'``).
            device (str or torch.device, optional): Where the network goes. (default: ``"cpu"``)
            aux (bool, optional): Build the auxiliary head (:obj:`None`: as saved; :obj:`False` drops it).
                (default: :obj:`None`)
            revision (str, optional): Hub branch, tag or commit. (default: :obj:`None`)
            cache_dir (str or PathLike, optional): Hub cache folder. (default: :obj:`None`)
            local_files_only (bool, optional): Use only the Hub cache. (default: :obj:`False`)
            token (str or bool, optional): Hub token. (default: :obj:`None`)

        Returns:
            GASNet: The network, in eval mode on ``device``.

        Raises:
            FileNotFoundError, ValueError: naming the file and field of the first problem.
            MissingExtraError: for a Hub id without huggingface_hub, or without safetensors.
        """
        return load_pretrained(cls, name_or_path, device=device, aux=aux, revision=revision,  # type: ignore[arg-type]
                               cache_dir=cache_dir, local_files_only=local_files_only, token=token)
