"""DARTS-family genotypes: import the ``Genotype(normal=..., reduce=...)`` notation of DARTS, PC-DARTS,
P-DARTS, NASNet and AmoebaNet into gasgnn genotypes.

DARTS shares one ``normal`` and one ``reduce`` cell across the network; :func:`genotype_from_darts`
expands them over a :class:`~gasgnn.space.SearchSpace` (normal cells take ``normal``, reduction cells
``reduce``). Errors name the DARTS cell ('normal' / 'reduce') and the pair, and list every offending op
at once. :func:`darts_space` builds a space that fits a genotype (node count, ops).
"""

from __future__ import annotations

import ast
from typing import Any

from gasgnn.genotype.errors import GenotypeError
from gasgnn.space import OPS, SearchSpace, preset_space

DARTS_CELLS: tuple[str, ...] = ("normal", "reduce")
"""The two DARTS cells, by their DARTS field names."""


def _check_ops(fields: dict[str, list], space: SearchSpace) -> None:
    unknown, outside = [], []
    for key in DARTS_CELLS:
        for i, (o, _) in enumerate(fields[key]):
            if o not in OPS:
                unknown.append(f"{key}[{i}] '{o}'")
            elif o not in space.ops:
                outside.append(f"{key}[{i}] '{o}'")
    if unknown:
        raise GenotypeError(
            f"from_darts: unknown op(s) {', '.join(unknown)}; register them with gasgnn.space.ops.register_op "
            f"(registered: {sorted(OPS)})"
        )
    if outside:
        # A genotype whose ops the space cannot search would give a network no search could produce,
        # and a latency table measured for the space would miss its ops.
        raise GenotypeError(
            f"from_darts: op(s) {', '.join(outside)} are not among the space's ops {list(space.ops)}; "
            f"use gasgnn.genotype.darts.darts_space(text) or a space with ops including them"
        )


def _check_cell(key: str, pairs: list[tuple[str, int]], concat: list[int], num_nodes: int) -> None:
    if len(pairs) != 2 * num_nodes:
        raise GenotypeError(
            f"from_darts: '{key}' has {len(pairs)} (op, input) pairs, expected 2 per node = {2 * num_nodes} "
            f"(the space has num_nodes={num_nodes})"
        )
    bad = [f"{key}[{i}] ('{o}', {s}) feeds node {2 + i // 2}" for i, (o, s) in enumerate(pairs)
           if not 0 <= s < 2 + i // 2]
    if bad:
        raise GenotypeError(f"from_darts: input from a later node or itself: {', '.join(bad)}")
    last = num_nodes + 1
    if any(not 2 <= c <= last for c in concat):
        raise GenotypeError(f"from_darts: '{key}_concat' {concat} must name nodes in 2..{last}")


def genotype_from_darts(text: str, space: SearchSpace, cls: Any) -> Any:
    """Parses DARTS notation and expands it over ``space``.

    Args:
        text (str): ``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)``.
        space (SearchSpace): The target space; every op must be among ``space.ops``.
        cls (type): The :class:`~gasgnn.genotype.Genotype` class to build (its ``cell_type`` builds cells).

    Returns:
        Genotype: one cell per cell of ``space``, carrying ``space``. Two pairs of one node with the same
        input become a multi-edge (NASNet, AmoebaNet).
    """
    fields = parse_darts(text)
    _check_ops(fields, space)
    chans = space.cell_channels()
    cells = []
    for k in range(space.num_cells):
        red = space.is_reduction(k)
        key = "reduce" if red else "normal"
        pairs = fields[key]
        if not pairs:
            raise GenotypeError(f"from_darts: '{key}' is empty but cell {k} is a {key} cell")
        concat = list(fields[key + "_concat"]) or list(range(2, space.num_nodes + 2))
        _check_cell(key, pairs, concat, space.num_nodes)
        edges = tuple((s, 2 + i // 2, o) for i, (o, s) in enumerate(pairs))
        cells.append(cls.cell_type(edges, red, chans[k], space.num_nodes, tuple(concat)))
    return cls(tuple(cells), space)


def darts_space(text: str, preset: str = "darts", **overrides: Any) -> SearchSpace:
    """A space that fits a DARTS genotype: the ``preset`` space, ``num_nodes`` from the genotype and the
    preset's ops plus any other registered op the genotype uses (e.g. NASNet's ``sep_conv_7x7``).

    Args:
        text (str): The DARTS notation.
        preset (str, optional): The base preset. (default: :obj:`"darts"`)
        **overrides: Other :class:`SearchSpace` fields (``num_cells``, ``channels``, ...).
    """
    fields = parse_darts(text)
    sizes = {k: len(fields[k]) for k in DARTS_CELLS if fields[k]}
    if not sizes:
        raise GenotypeError("darts_space: both 'normal' and 'reduce' are empty")
    if len(set(sizes.values())) > 1 or any(n % 2 for n in sizes.values()):
        raise GenotypeError(f"darts_space: pair counts {sizes} must be equal and even (2 per node)")
    base = preset_space(preset, **{k: v for k, v in overrides.items() if k != "ops"})
    ops = list(overrides.get("ops", base.ops))
    ops += [o for k in DARTS_CELLS for o, _ in fields[k] if o not in ops and o in OPS and o != "none"]
    ops = list(dict.fromkeys(ops))
    return base.replace(num_nodes=next(iter(sizes.values())) // 2, ops=tuple(ops))


def parse_darts(text: str) -> dict[str, list]:
    """Parses ``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`` safely.

    Only literals and ``range(a, b)`` are accepted; anything else raises :class:`GenotypeError`.

    Returns:
        dict: ``normal``/``reduce`` as lists of ``(op, src)`` and the two concat lists.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise GenotypeError(f"DARTS genotype: not parseable: {e.msg}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise GenotypeError(
            "DARTS genotype: expected Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)"
        )
    if call.args:
        raise GenotypeError("DARTS genotype: use keyword arguments only")
    out: dict[str, list] = {"normal": [], "normal_concat": [], "reduce": [], "reduce_concat": []}
    for kw in call.keywords:
        if kw.arg not in out:
            raise GenotypeError(f"DARTS genotype: unknown field '{kw.arg}'")
        node = kw.value
        if (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and kw.arg.endswith("_concat")
        ):
            try:
                args = [ast.literal_eval(a) for a in node.args]
                out[kw.arg] = list(range(*args))
            except (ValueError, TypeError):
                raise GenotypeError(f"DARTS genotype: bad range in '{kw.arg}'") from None
            continue
        try:
            val = ast.literal_eval(node)
        except ValueError:
            raise GenotypeError(f"DARTS genotype: field '{kw.arg}' is not a literal") from None
        if kw.arg.endswith("_concat"):
            if not isinstance(val, (list, tuple)) or not all(isinstance(v, int) for v in val):
                raise GenotypeError(f"DARTS genotype: '{kw.arg}' must be a list of ints")
            out[kw.arg] = list(val)
        else:
            if not isinstance(val, (list, tuple)) or not all(
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int) for p in val
            ):
                raise GenotypeError(f"DARTS genotype: '{kw.arg}' must be a list of ('op', src) pairs")
            out[kw.arg] = list(val)
    return out
