"""Reference networks run through the same training, evaluation and benchmark harness.

Two kinds are registered by name:

- **Genotype references** (``hand_sep``, ``hand_light``, and the ablation ``skip_only``): hand-designed,
  cell-uniform architectures built from the same op registry and expressed as a
  :class:`~gasgnn.genotype.Genotype`, so they go through :class:`~gasgnn.models.GASNet`, the trainer and the
  benchmarks exactly like a searched network. They answer "does the search beat a sensible hand design
  of similar latency?" and (``skip_only``) "how much do the cells add to the stem and head at all?".
- **Module references** (``smp_unet_r18``, ``smp_fpn_r18``): networks from
  ``segmentation_models_pytorch``, available only when that package is installed (it is not a
  dependency; :func:`available_references` hides them otherwise).

Anything that takes a genotype on the command line accepts either a JSON file or one of these names
(see :func:`resolve_genotype`).

Example::

    from gasgnn import SearchSpace, GASNet
    from gasgnn.genotype.references import reference_genotype

    g = reference_genotype("hand_sep", SearchSpace())
    net = GASNet(g, head="ppm")
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn  # module references build nn.Modules

from gasgnn.genotype.genotype import CellGenotype, Genotype
from gasgnn.registry import Registry
from gasgnn.space import SearchSpace


@dataclass(frozen=True)
class ReferenceNet:
    """A registered reference network.

    Args:
        name (str): Registry name.
        description (str): One line for listings.
        genotype_fn (callable, optional): ``genotype_fn(space) -> Genotype`` for genotype references.
        module_fn (callable, optional): ``module_fn(num_classes, **kwargs) -> nn.Module`` for module
            references.
        requires (str, optional): Python package the reference needs (checked with
            :func:`importlib.util.find_spec`). (default: :obj:`None`)
    """

    name: str
    description: str
    genotype_fn: Callable[[SearchSpace], Genotype] | None = None
    module_fn: Callable[..., nn.Module] | None = None
    requires: str | None = None

    @property
    def available(self) -> bool:
        """Whether the required package (if any) is importable."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    @property
    def is_genotype(self) -> bool:
        """Whether the reference is a genotype (runs through :class:`~gasgnn.models.net.GASNet`)."""
        return self.genotype_fn is not None


#: Registered reference networks by name.
REFERENCE_NETS: Registry[ReferenceNet] = Registry("reference network")


def register_reference(ref: ReferenceNet, overwrite: bool = False) -> ReferenceNet:
    """Adds a reference network to :data:`REFERENCE_NETS`.

    Args:
        ref (ReferenceNet): The entry; exactly one of ``genotype_fn`` and ``module_fn`` must be set.
        overwrite (bool, optional): Replace an existing entry. (default: :obj:`False`)

    Returns:
        ReferenceNet: ``ref``.
    """
    if (ref.genotype_fn is None) == (ref.module_fn is None):
        raise ValueError(f"reference '{ref.name}': set exactly one of genotype_fn and module_fn")
    return REFERENCE_NETS.register(ref.name, ref, overwrite=overwrite)


def available_references() -> list[str]:
    """Names of the registered references whose requirements are installed, sorted."""
    return sorted(n for n, r in REFERENCE_NETS.items() if r.available)


def get_reference(name: str) -> ReferenceNet:
    """The registered reference ``name``.

    Raises:
        RegistryError: for an unknown name; ImportError when its package is not installed.
    """
    ref = REFERENCE_NETS.get(name)
    if not ref.available:
        raise ImportError(f"reference network '{name}' needs the '{ref.requires}' package (not installed)")
    return ref


def reference_genotype(name: str, space: SearchSpace | None = None) -> Genotype:
    """The genotype of a genotype reference, laid out for ``space``.

    Args:
        name (str): A genotype reference (``'hand_sep'``, ``'hand_light'`` or a user's).
        space (SearchSpace, optional): The space (cells, reductions, channels).
            (default: :obj:`SearchSpace()`)

    Returns:
        Genotype: Carrying ``space``.
    """
    ref = get_reference(name)
    if ref.genotype_fn is None:
        raise ValueError(f"reference network '{name}' is a module, not a genotype; use build_reference")
    return ref.genotype_fn(space or SearchSpace())


def resolve_genotype(spec: str | os.PathLike, space: SearchSpace | None = None) -> Genotype:
    """A genotype from a JSON file path or a registered genotype reference name.

    Args:
        spec (str or PathLike): Path of a genotype JSON file, or a reference name such as ``'hand_sep'``.
        space (SearchSpace, optional): Space for reference names. (default: :obj:`SearchSpace()`)

    Returns:
        Genotype: The genotype.

    Raises:
        FileNotFoundError: if ``spec`` is neither an existing file nor a registered name.
    """
    s = os.fspath(spec)
    if Path(s).is_file():
        return Genotype.load(s)
    if s in REFERENCE_NETS and REFERENCE_NETS[s].is_genotype:
        return reference_genotype(s, space)
    names = sorted(n for n, r in REFERENCE_NETS.items() if r.is_genotype)
    raise FileNotFoundError(f"genotype file not found: {s} (nor is it a reference genotype name: {names})")


# ---------------------------------------------------------------------------------------------------
def _uniform_genotype(
    space: SearchSpace,
    normal: Callable[[int], tuple[str, str]],
    last_stage: Callable[[int], tuple[str, str]],
    reduce: Callable[[int], tuple[str, str]],
) -> Genotype:
    """Every intermediate node ``d`` takes ops from its two predecessors ``d-2`` and ``d-1``.

    ``normal(d)``, ``last_stage(d)`` and ``reduce(d)`` give the ``(op from d-2, op from d-1)`` pair in
    normal cells before the last reduction, normal cells after it, and reduction cells.
    """
    last_red = max(space.reduction_cells) if space.reduction_cells else -1
    chans = space.cell_channels()
    cells = []
    for k in range(space.num_cells):
        red = space.is_reduction(k)
        rule = reduce if red else (last_stage if k > last_red else normal)
        edges = []
        for d in range(2, space.num_nodes + 2):
            op_a, op_b = rule(d)
            edges += [(d - 2, d, op_a), (d - 1, d, op_b)]
        cells.append(CellGenotype(tuple(edges), red, chans[k], space.num_nodes))
    missing = sorted({o for c in cells for _, _, o in c.edges} - set(space.ops))
    if missing:
        raise ValueError(f"hand-designed genotype needs op(s) {missing}, not in SearchSpace.ops {space.ops}")
    return Genotype(tuple(cells), space)


def hand_sep(space: SearchSpace) -> Genotype:
    """sep_conv_3x3 from both predecessors in normal cells; dilated separable convs (d2 and d4) in the last
    stage for context; max pooling and sep_conv_3x3 on the strided inputs of reduction cells."""
    return _uniform_genotype(
        space,
        normal=lambda d: ("sep_conv_3x3", "sep_conv_3x3"),
        last_stage=lambda d: ("dil_conv_3x3", "dil_conv_3x3_d4"),
        reduce=lambda d: ("max_pool_3x3", "sep_conv_3x3") if d == 2 else ("sep_conv_3x3", "sep_conv_3x3"),
    )


def hand_light(space: SearchSpace) -> Genotype:
    """A lighter hand design: a skip and a sep_conv_3x3 per node (skip and a d4 dilated conv in the last
    stage), the pattern the supplement reports GAS learning in low stages (light ops early)."""
    return _uniform_genotype(
        space,
        normal=lambda d: ("skip_connect", "sep_conv_3x3"),
        last_stage=lambda d: ("skip_connect", "dil_conv_3x3_d4"),
        reduce=lambda d: ("max_pool_3x3", "sep_conv_3x3") if d == 2 else ("skip_connect", "sep_conv_3x3"),
    )


def skip_only(space: SearchSpace) -> Genotype:
    """An ablation, not a design: every edge a skip connection (factorised reduction on strided inputs),
    so the cells add almost nothing; what it reaches is what the stem and the head achieve alone."""
    return _uniform_genotype(
        space,
        normal=lambda d: ("skip_connect", "skip_connect"),
        last_stage=lambda d: ("skip_connect", "skip_connect"),
        reduce=lambda d: ("skip_connect", "skip_connect"),
    )


def _smp(arch: str) -> Callable[..., nn.Module]:
    def factory(num_classes: int, encoder: str = "resnet18", **kwargs: Any) -> nn.Module:
        import segmentation_models_pytorch as smp  # optional, see module docstring

        # encoder_weights=None: no download; the harness trains every network from scratch alike.
        return getattr(smp, arch)(encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)

    return factory


register_reference(ReferenceNet("hand_sep", "hand-designed: sep convs, dilated convs last", hand_sep))
register_reference(ReferenceNet("hand_light", "hand-designed: skip + sep conv per node, light", hand_light))
register_reference(ReferenceNet("skip_only", "ablation: every edge a skip connection (stem + head alone)", skip_only))
register_reference(ReferenceNet(
    "smp_unet_r18", "segmentation_models_pytorch U-Net, ResNet-18 encoder", module_fn=_smp("Unet"),
    requires="segmentation_models_pytorch",
))
register_reference(ReferenceNet(
    "smp_fpn_r18", "segmentation_models_pytorch FPN, ResNet-18 encoder", module_fn=_smp("FPN"),
    requires="segmentation_models_pytorch",
))
