"""The search space and the architecture graph (ArchGraph) built from it.

The ArchGraph is the one representation of the search space that every stage shares: a PyG
:class:`~torch_geometric.data.Data` whose nodes are the candidate edges ("op slots") of all cells, in
cell order, with ``x`` the architecture parameters alpha ``[num_cells * E, K]``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from gasgnn.registry import Registry
from gasgnn.space.builders import build_edge_index
from gasgnn.space.ops import DARTS_OPS, GAS_OPS, OPS


class SpaceError(ValueError):
    """An impossible or malformed search-space setting; the message names the field."""


def _default_reductions(num_cells: int) -> tuple[int, ...]:
    return (num_cells // 3, 2 * num_cells // 3)


@dataclass(frozen=True)
class SearchSpace:
    """A validated GAS search space: stem, a chain of cell-independent cells and a head.

    Cells follow the DARTS convention: inputs are the outputs of cells ``k-2`` and ``k-1`` (nodes 0 and
    1), ``num_nodes`` intermediate nodes (2 ... ``num_nodes + 1``) each sum mixed ops on all earlier
    nodes, and the output concatenates the intermediate nodes. In a reduction cell the ops adjacent to
    the input nodes have stride 2 and the channels double.

    Args:
        num_cells (int, optional): Number of cells L. (default: :obj:`12`)
        num_nodes (int, optional): Intermediate nodes per cell M. (default: :obj:`4`)
        reduction_cells (tuple, optional): Indices of the reduction cells; :obj:`None` puts two at
            ``L//3`` and ``2L//3``. (default: :obj:`None`)
        channels (int, optional): Channels of the first cells' ops C. (default: :obj:`16`)
        stem_channels (int, optional): Stem output channels; :obj:`None` means ``3 * channels``.
            (default: :obj:`None`)
        stem_stride (int, optional): Stem stride, a power of two (4 = 1/4 resolution). (default: :obj:`4`)
        ops (tuple, optional): Candidate op names, the columns of alpha. (default: the eight GAS ops)
        num_classes (int, optional): Segmentation classes. (default: :obj:`11`, CamVid)
        input_size (tuple, optional): Input ``(H, W)`` the space is laid out for (the latency table and
            the spatial sizes in the ArchGraph use it). (default: :obj:`(180, 240)`)
        in_channels (int, optional): Image channels. (default: :obj:`3`)
    """

    num_cells: int = 12
    num_nodes: int = 4
    reduction_cells: tuple[int, ...] | None = None
    channels: int = 16
    stem_channels: int | None = None
    stem_stride: int = 4
    ops: tuple[str, ...] = GAS_OPS
    num_classes: int = 11
    input_size: tuple[int, int] = (180, 240)
    in_channels: int = 3
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        self._check_integers()
        # Normalise sequences (JSON and CLI hand in lists) so that spaces compare and hash equal.
        set_(self, "ops", tuple(self.ops))
        set_(self, "input_size", tuple(int(s) for s in self.input_size))
        if self.reduction_cells is None:
            set_(self, "reduction_cells", _default_reductions(self.num_cells))
        else:
            set_(self, "reduction_cells", tuple(sorted(int(r) for r in self.reduction_cells)))
        if self.stem_channels is None:
            set_(self, "stem_channels", 3 * self.channels)
        self._validate()

    # ------------------------------------------------------------------------------------------
    def _check_integers(self) -> None:
        """Integer fields must be integers: a JSON ``1.5`` or ``true`` is refused, not truncated or taken as 1."""
        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        for name in ("num_cells", "num_nodes", "channels", "stem_stride", "num_classes", "in_channels"):
            if not is_int(getattr(self, name)):
                raise SpaceError(f"SearchSpace.{name}: must be an integer, got {getattr(self, name)!r}")
        if self.stem_channels is not None and not is_int(self.stem_channels):
            raise SpaceError(f"SearchSpace.stem_channels: must be an integer, got {self.stem_channels!r}")
        for name in ("input_size", "reduction_cells"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, (str, bytes)) or not all(is_int(x) for x in v)):
                raise SpaceError(f"SearchSpace.{name}: must be a list of integers, got {v!r}")

    def _validate(self) -> None:
        def bad(name: str, msg: str) -> None:
            raise SpaceError(f"SearchSpace.{name}: {msg}")

        if not isinstance(self.num_cells, int) or self.num_cells < 1:
            bad("num_cells", f"must be a positive integer, got {self.num_cells!r}")
        if not isinstance(self.num_nodes, int) or self.num_nodes < 1:
            bad("num_nodes", f"must be a positive integer, got {self.num_nodes!r}")
        reds = self.reduction_cells
        if len(set(reds)) != len(reds):
            bad("reduction_cells", f"has duplicates: {reds}")
        for r in reds:
            if not 0 <= r < self.num_cells:
                bad("reduction_cells", f"index {r} is outside 0..{self.num_cells - 1}")
        if not isinstance(self.channels, int) or self.channels < 2 or self.channels % 2:
            bad("channels", f"must be an even integer >= 2 (stride-2 skips split channels), got {self.channels!r}")
        if not isinstance(self.stem_channels, int) or self.stem_channels < 1:
            bad("stem_channels", f"must be a positive integer, got {self.stem_channels!r}")
        s = self.stem_stride
        if not isinstance(s, int) or s < 1 or s & (s - 1):
            bad("stem_stride", f"must be a power of two, got {s!r}")
        if len(self.ops) == 0:
            bad("ops", "is empty")
        if len(set(self.ops)) != len(self.ops):
            bad("ops", f"has duplicates: {self.ops}")
        unknown = [o for o in self.ops if o not in OPS]
        if unknown:
            bad("ops", f"unknown op(s) {unknown}; registered: {sorted(OPS)} (an op of your own is registered by "
                       "importing its module first, e.g. 'gasgnn --plugin my_ops.py ...')")
        if all(o == "none" for o in self.ops):
            bad("ops", "needs at least one op other than 'none' (derivation picks a non-none op)")
        if self.num_classes < 1:
            bad("num_classes", f"must be >= 1, got {self.num_classes}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            bad("input_size", f"must be (H, W) with positive sizes, got {self.input_size}")
        stride = self.output_stride
        H, W = self.input_size
        if H < stride or W < stride:
            bad("input_size", f"{self.input_size} is smaller than the output stride {stride}")
        if self.in_channels < 1:
            bad("in_channels", f"must be >= 1, got {self.in_channels}")

    # ------------------------------------------------------------------------------------------
    @property
    def num_ops(self) -> int:
        """K, the number of candidate ops."""
        return len(self.ops)

    @property
    def edges_per_cell(self) -> int:
        """E, the candidate edges of one cell: 2 + 3 + ... + (M + 1)."""
        M = self.num_nodes
        return M * (M + 3) // 2

    @property
    def num_arch_nodes(self) -> int:
        """Nodes of the ArchGraph: ``num_cells * E``."""
        return self.num_cells * self.edges_per_cell

    @property
    def output_stride(self) -> int:
        """Total stride of the last cell's output."""
        return self.stem_stride * 2 ** len(self.reduction_cells)

    def is_reduction(self, k: int) -> bool:
        """Whether cell ``k`` is a reduction cell."""
        return k in self.reduction_cells

    def cell_edges(self) -> list[tuple[int, int]]:
        """The ``(src, dst)`` pairs of one cell, in ArchGraph order (by ``dst``, then ``src``)."""
        return [(j, i + 2) for i in range(self.num_nodes) for j in range(i + 2)]

    def cell_channels(self) -> list[int]:
        """Op channels of every cell (doubling at each reduction cell)."""
        C, out = self.channels, []
        for k in range(self.num_cells):
            if self.is_reduction(k):
                C *= 2
            out.append(C)
        return out

    def cell_input_sizes(self, input_size: tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """Spatial size of the (pre-processed) inputs of every cell for an image of ``input_size``."""
        H, W = input_size or self.input_size
        for _ in range(int(math.log2(self.stem_stride))):
            H, W = math.ceil(H / 2), math.ceil(W / 2)
        out = []
        for k in range(self.num_cells):
            out.append((H, W))
            if self.is_reduction(k):
                H, W = math.ceil(H / 2), math.ceil(W / 2)
        return out

    def cell_slice(self, k: int) -> slice:
        """The rows of alpha (ArchGraph nodes) that belong to cell ``k``."""
        E = self.edges_per_cell
        return slice(k * E, (k + 1) * E)

    # ------------------------------------------------------------------------------------------
    def init_alpha(self, scale: float = 1e-3, generator: torch.Generator | None = None) -> Tensor:
        """Initial architecture parameters ``[num_cells * E, K]`` (small random, as in DARTS)."""
        return scale * torch.randn(self.num_arch_nodes, self.num_ops, generator=generator)

    def arch_graph(self, alpha: Tensor | None = None, builder: str = "adjacent", **kwargs: Any) -> Data:
        """Builds the ArchGraph.

        Args:
            alpha (Tensor, optional): Node features ``[num_cells * E, K]``; :obj:`None` gives
                :meth:`init_alpha`. (default: :obj:`None`)
            builder (str, optional): Name of the registered relation that makes ``edge_index``
                (see :data:`gasgnn.space.builders.BUILDERS`). (default: :obj:`"adjacent"`)
            **kwargs: Passed to the builder.

        Returns:
            Data: with ``x`` [N, K], ``cell``, ``pos_in_cell``, ``src``, ``dst``, ``stride``, ``channels``,
            ``height``, ``width`` (input size of the op), ``reduction`` (per node, bool),
            ``edge_index`` [2, num_relations], and ``num_cells``, ``edges_per_cell``, ``op_names``.
        """

        if alpha is None:
            alpha = self.init_alpha()
        if tuple(alpha.shape) != (self.num_arch_nodes, self.num_ops):
            raise SpaceError(
                f"alpha has shape {tuple(alpha.shape)}, expected [num_cells*E, K] = "
                f"[{self.num_arch_nodes}, {self.num_ops}]"
            )
        attrs = self._node_attributes()
        data = Data(x=alpha, edge_index=build_edge_index(builder, self, **kwargs), **attrs)
        data.num_cells = self.num_cells
        data.edges_per_cell = self.edges_per_cell
        data.op_names = list(self.ops)
        return data

    def _node_attributes(self) -> dict[str, Tensor]:
        if "attrs" not in self._derived:
            rows: dict[str, list[int]] = {
                k: [] for k in ("cell", "pos_in_cell", "src", "dst", "stride", "channels", "height", "width",
                                "reduction")
            }
            sizes = self.cell_input_sizes()
            chans = self.cell_channels()
            for k in range(self.num_cells):
                red = self.is_reduction(k)
                for e, (src, dst) in enumerate(self.cell_edges()):
                    rows["cell"].append(k)
                    rows["pos_in_cell"].append(e)
                    rows["src"].append(src)
                    rows["dst"].append(dst)
                    rows["stride"].append(2 if red and src < 2 else 1)
                    rows["channels"].append(chans[k])
                    rows["height"].append(sizes[k][0] if src < 2 else math.ceil(sizes[k][0] / (2 if red else 1)))
                    rows["width"].append(sizes[k][1] if src < 2 else math.ceil(sizes[k][1] / (2 if red else 1)))
                    rows["reduction"].append(int(red))
            attrs = {k: torch.tensor(v, dtype=torch.long) for k, v in rows.items()}
            attrs["reduction"] = attrs["reduction"].bool()
            self._derived["attrs"] = attrs
        return {k: v.clone() for k, v in self._derived["attrs"].items()}

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the settings."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        d["ops"] = list(self.ops)
        d["reduction_cells"] = list(self.reduction_cells)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchSpace:
        """Builds a space from :meth:`to_dict` output, naming unknown fields."""
        if not isinstance(d, dict):
            raise SpaceError(f"a search space must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = set(d) - known
        if unknown:
            raise SpaceError(f"unknown search-space field(s) {sorted(unknown)}; known: {sorted(known)}")
        try:
            return cls(**d)
        except TypeError as e:  # wrong types that comparisons trip on
            raise SpaceError(f"bad search-space settings: {e}") from None

    def replace(self, **changes: Any) -> SearchSpace:
        """A copy with some fields changed (validated again)."""
        d = self.to_dict()
        if "num_cells" in changes and "reduction_cells" not in changes:
            d["reduction_cells"] = None  # the default positions for the new depth
        if "channels" in changes and "stem_channels" not in changes:
            d["stem_channels"] = None
        d.update(changes)
        return SearchSpace.from_dict(d)


# ------------------------------------------------------------------------------------------------
# Presets: named starting points for common spaces (any field can still be overridden).

#: Registered search-space presets by name: each entry is a dict of :class:`SearchSpace` fields.
SPACE_PRESETS: Registry[dict[str, Any]] = Registry("space preset")


def register_space_preset(name: str, description: str = "", overwrite: bool = False, **fields: Any) -> dict[str, Any]:
    """Registers the space preset ``name``: :class:`SearchSpace` fields over the defaults.

    Args:
        name (str): The preset's name (``gasgnn search --space NAME``).
        description (str, optional): A few words for ``--help`` (kept as registry metadata).
            (default: ``""``)
        overwrite (bool, optional): Replace an existing preset. (default: :obj:`False`)
        **fields: :class:`SearchSpace` fields (``ops``, ``num_cells``, ...). The preset is checked by
            building its space, so a bad field fails here, naming it.

    Returns:
        dict: the registered fields.
    """
    preset = dict(fields)
    try:
        SearchSpace(**preset)
    except TypeError as e:
        raise SpaceError(f"space preset '{name}': {e}") from None
    except SpaceError as e:
        raise SpaceError(f"space preset '{name}': {e}") from None
    return SPACE_PRESETS.register(name, preset, overwrite=overwrite, description=description)


def preset_space(name: str, **overrides: Any) -> SearchSpace:
    """The search space preset ``name`` with ``overrides`` applied.

    Args:
        name (str): A registered preset (:data:`SPACE_PRESETS`: ``'gas'``, ``'darts'``, ``'tiny'``, ...).
        **overrides: Any :class:`SearchSpace` field (e.g. ``num_nodes=5`` for NASNet cells).
    """
    if name not in SPACE_PRESETS:
        raise SpaceError(f"unknown space preset '{name}'; presets: {', '.join(SPACE_PRESETS.names())}")
    fields = {**SPACE_PRESETS[name], **overrides}
    if "num_cells" in overrides and "reduction_cells" not in overrides:
        fields.pop("reduction_cells", None)  # the default positions for the new depth
    if "channels" in overrides and "stem_channels" not in overrides:
        fields.pop("stem_channels", None)
    return SearchSpace(**fields)


register_space_preset("gas", "the paper's: 12 cells, 4 nodes, the eight GAS ops")  # the SearchSpace defaults
# DARTS-family genotypes (DARTS, PC-DARTS, P-DARTS) import into it.
register_space_preset("darts", "DARTS's eight candidate ops", ops=DARTS_OPS)
# Small enough for a search of a few CPU seconds (smoke runs, examples, tests).
register_space_preset("tiny", "4 cells of 8 channels at 64x96, for smoke runs", num_cells=4, channels=8,
                      input_size=(64, 96))
