"""Genotypes as PyG graphs: :func:`genotype_to_data` / :func:`genotype_from_data` behind
:meth:`Genotype.to_data <gasgnn.genotype.Genotype.to_data>` and :meth:`~gasgnn.genotype.Genotype.from_data`.

The graphs are made to be *learned from in batches*:

- ``edge_op`` indexes one global op vocabulary (:func:`op_vocabulary`: the op registry's names in
  registration order, built-ins first), stored with every graph as ``op_names``, so equal op names have
  equal ids across a batch and a dataset; :func:`batch_vocabulary` checks that a batch agrees.
- no non-index key contains ``'index'`` or ``'face'`` (PyG would shift it by the node count when
  batching); the position of a node inside its cell is ``node_pos``.
- the embedded space is a JSON string ``space_json`` (``""`` when there is none): PyG collates strings
  into lists, so genotypes with and without a space batch together and ``Batch.to_data_list()`` gives
  the strings back unchanged (a dict would be collated field by field into tensors).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch_geometric.data import Batch, Data

from gasgnn.genotype.errors import GenotypeError
from gasgnn.space import OPS, SearchSpace


def op_vocabulary() -> list[str]:
    """The global op vocabulary: every registered op name, in registration order (built-ins first, so
    their ids do not move when a user registers more ops)."""
    return list(OPS)


def genotype_to_data(genotype: Any, vocab: Sequence[str] | None = None) -> Data:
    """The derived graph as PyG ``Data``.

    Nodes are the cells' DAG nodes (``num_nodes + 2`` per cell, cell by cell); edges are the kept edges
    in genotype order (a multi-edge appears twice).

    Args:
        genotype (Genotype): The genotype.
        vocab (sequence of str, optional): The op vocabulary ``edge_op`` indexes; :obj:`None` uses
            :func:`op_vocabulary`. Pin it to keep ids fixed across sessions that register other ops.
            (default: :obj:`None`)

    Returns:
        Data: ``edge_index`` [2, n_edges] (global node ids), ``edge_op`` [n_edges] (index into
        ``op_names``), ``edge_cell``/``edge_stride`` [n_edges], ``node_cell``/``node_pos``/``node_concat``
        [N], ``cell_reduction``/``cell_channels``/``cell_num_nodes`` [num_cells], ``op_names`` (the
        vocabulary) and ``space_json``.
    """
    vocab = list(vocab) if vocab is not None else op_vocabulary()
    op_id = {o: i for i, o in enumerate(vocab)}
    missing = sorted({o for o in genotype.ops() if o not in op_id})
    if missing:
        raise GenotypeError(f"to_data: op(s) {missing} are not in the vocabulary {vocab}")
    src, dst, eop, ecell, estride, ncell, npos, nconcat = [], [], [], [], [], [], [], []
    n = 0
    for k, c in enumerate(genotype.cells):
        for s, d, o in c.edges:
            src.append(n + s)
            dst.append(n + d)
            eop.append(op_id[o])
            ecell.append(k)
            estride.append(c.stride(s))
        for i in range(c.num_nodes + 2):
            ncell.append(k)
            npos.append(i)
            nconcat.append(i in c.concat)
        n += c.num_nodes + 2
    cells = genotype.cells
    data = Data(
        edge_index=torch.tensor([src, dst], dtype=torch.long).view(2, -1),
        edge_op=torch.tensor(eop, dtype=torch.long),
        edge_cell=torch.tensor(ecell, dtype=torch.long),
        edge_stride=torch.tensor(estride, dtype=torch.long),
        node_cell=torch.tensor(ncell, dtype=torch.long),
        node_pos=torch.tensor(npos, dtype=torch.long),
        node_concat=torch.tensor(nconcat, dtype=torch.bool),
        cell_reduction=torch.tensor([c.reduction for c in cells], dtype=torch.bool),
        cell_channels=torch.tensor([c.channels for c in cells], dtype=torch.long),
        cell_num_nodes=torch.tensor([c.num_nodes for c in cells], dtype=torch.long),
        num_nodes=n,
    )
    data.op_names = vocab
    data.space_json = json.dumps(genotype.space.to_dict(), sort_keys=True) if genotype.space is not None else ""
    return data


def genotype_from_data(data: Data, cls: Any) -> Any:
    """Inverse of :func:`genotype_to_data`, for one graph (a ``Batch`` of one graph is accepted).

    Args:
        data (Data): One genotype graph.
        cls (type): The :class:`~gasgnn.genotype.Genotype` class to build (its ``cell_type`` builds cells).

    Raises:
        GenotypeError: for a ``Batch`` of several graphs (split it with ``to_data_list()``) or ids
            outside ``op_names``.
    """
    if isinstance(data, Batch):
        if data.num_graphs != 1:
            raise GenotypeError(
                f"from_data: got a Batch of {data.num_graphs} genotypes; convert each graph of "
                "batch.to_data_list()"
            )
        data = data.get_example(0)
    names = list(data.op_names)
    L = int(data.cell_reduction.numel())
    offsets, n = [], 0
    for k in range(L):
        offsets.append(n)
        n += int(data.cell_num_nodes[k]) + 2
    edges: list[list[tuple[int, int, str]]] = [[] for _ in range(L)]
    for (s, d), o, k in zip(data.edge_index.t().tolist(), data.edge_op.tolist(), data.edge_cell.tolist()):
        if not 0 <= o < len(names):
            raise GenotypeError(f"from_data: edge_op {o} is outside the vocabulary of {len(names)} ops")
        edges[k].append((s - offsets[k], d - offsets[k], names[o]))
    # ``node_index`` is the key of graphs written before version 2 of this layout.
    pos = data.node_pos if "node_pos" in data else data.node_index
    cells = []
    for k in range(L):
        mask = data.node_cell == k
        concat = tuple(pos[mask & data.node_concat].tolist())
        cells.append(cls.cell_type(tuple(edges[k]), bool(data.cell_reduction[k]), int(data.cell_channels[k]),
                                  int(data.cell_num_nodes[k]), concat))
    space = None
    if getattr(data, "space_json", None):
        space = SearchSpace.from_dict(json.loads(data.space_json))
    elif isinstance(getattr(data, "space", None), dict):  # the older layout
        space = SearchSpace.from_dict(data.space)
    return cls(tuple(cells), space)


def batch_vocabulary(batch: Batch) -> list[str]:
    """The op vocabulary shared by every graph of ``batch``.

    Raises:
        GenotypeError: when the graphs were made with different vocabularies (their ``edge_op`` ids
            would mean different ops); rebuild them with one ``vocab``.
    """
    vocabs = batch.op_names
    if vocabs and isinstance(vocabs[0], str):  # a single Data
        return list(vocabs)
    first = list(vocabs[0])
    for i, v in enumerate(vocabs):
        if list(v) != first:
            raise GenotypeError(
                f"batch: graph {i} has op vocabulary {list(v)} but graph 0 has {first}; build all graphs "
                "with the same to_data(vocab=...)"
            )
    return first
