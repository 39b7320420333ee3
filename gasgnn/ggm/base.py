"""The base of the built-in guides: :class:`Guide` (gamma, the bounded update, diagnostics, regularizer).

Every guide maps alpha to alpha' with ``forward(alpha, graph)``; a :class:`Guide` does it as
``alpha + gamma * Z`` with ``Z`` from :meth:`Guide.guidance`. With ``bounded=True`` the update is kept
smaller than alpha by construction (:meth:`Guide.bound`): ``||alpha' - alpha|| < gamma * ||alpha||`` with
``gamma < 1``, whatever the guide's weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from gasgnn.ggm.diagnostics import attention_diagnostics
from gasgnn.ggm.errors import GuideError
from gasgnn.space import SearchSpace

__all__ = ["Guide", "guide_regularizer"]


class Guide(nn.Module):
    r"""Base of the built-in guides: the space, the residual scale gamma, alpha validation, the bounded
    update, the diagnostics and the auxiliary loss hook.

    Subclasses implement :meth:`guidance` (the update ``Z``); :meth:`forward` returns
    ``alpha + gamma * Z``. A fixed ``gamma == 0`` returns ``alpha`` itself without computing ``Z``,
    so alpha' is bitwise alpha.

    With ``bounded=True`` the update of every cell :math:`k` is rescaled relative to that cell's alpha
    before gamma applies (:meth:`bound`):

    .. math::
        \tilde Z_k = Z_k \, \frac{\lVert\alpha_k\rVert}{\lVert Z_k\rVert + \lVert\alpha_k\rVert},
        \qquad \alpha' = \alpha + \gamma \tilde Z, \quad 0 \le \gamma < 1

    so :math:`\lVert\tilde Z_k\rVert < \lVert\alpha_k\rVert` and the update ratio
    :math:`\lVert\alpha'-\alpha\rVert / \lVert\alpha\rVert < \gamma < 1` for any weights; a learnable
    gamma is then :math:`\gamma_{max}\,\sigma(g)` with :math:`\gamma_{max} = 1`.

    Args:
        space (SearchSpace): The search space whose alpha the guide maps.
        gamma (float, optional): Scale of the guidance. (default: :obj:`0.5`)
        learn_gamma (bool, optional): Make gamma a learnable scalar initialised at ``gamma``.
            (default: :obj:`False`)
        bounded (bool, optional): Bound the update below ``gamma * ||alpha||`` (needs ``0 <= gamma < 1``,
            ``0 < gamma < 1`` when learnable). (default: :obj:`False`)
    """

    def __init__(self, space: SearchSpace, gamma: float = 0.5, learn_gamma: bool = False,
                 bounded: bool = False) -> None:
        super().__init__()
        if not isinstance(space, SearchSpace):
            raise GuideError(
                f"{type(self).__name__}: space must be a SearchSpace, got {type(space).__name__}"
            )
        self.space = space
        self._gamma_init = float(gamma)
        self.learn_gamma = bool(learn_gamma)
        self.bounded = bool(bounded)
        if self.bounded and not (0.0 < self._gamma_init < 1.0 if self.learn_gamma else 0.0 <= self._gamma_init < 1.0):
            raise GuideError(
                f"{type(self).__name__}.gamma: bounded=True needs {'0 <' if self.learn_gamma else '0 <='} gamma < 1 "
                f"(the update stays below gamma * ||alpha||), got {gamma}"
            )
        if self.learn_gamma and self.bounded:
            # gamma = sigmoid(g) stays in (0, 1) whatever Adam does to g.
            self.gamma_logit = nn.Parameter(torch.tensor(math.log(self._gamma_init / (1 - self._gamma_init))))
            self.gamma: Tensor | float | None = None
        elif self.learn_gamma:
            self.gamma = nn.Parameter(torch.tensor(self._gamma_init))
        else:
            self.gamma = self._gamma_init

    def reset_parameters(self) -> None:
        """Re-initialises gamma (subclasses also reset their layers)."""
        with torch.no_grad():
            if isinstance(self.gamma, nn.Parameter):
                self.gamma.fill_(self._gamma_init)
            if hasattr(self, "gamma_logit"):
                self.gamma_logit.fill_(math.log(self._gamma_init / (1 - self._gamma_init)))

    def scale(self) -> Tensor | float:
        """The gamma in use: the fixed float, the learnable scalar, or ``sigmoid(gamma_logit)`` when
        learnable and bounded."""
        if self.gamma is None:
            return torch.sigmoid(self.gamma_logit)
        return self.gamma

    def check(self, alpha: Tensor, graph: Data | None) -> None:
        """Raises :class:`GuideError` when ``alpha`` or ``graph`` does not belong to :attr:`space`."""
        s, name = self.space, type(self).__name__
        expected = (s.num_arch_nodes, s.num_ops)
        if alpha.dim() != 2 or tuple(alpha.shape) != expected:
            raise GuideError(
                f"{name}: alpha has shape {tuple(alpha.shape)}, expected [num_cells*E, K] = {list(expected)}"
            )
        if graph is not None:
            for key, want in (("num_cells", s.num_cells), ("edges_per_cell", s.edges_per_cell)):
                got = getattr(graph, key, None)
                if got is not None and int(got) != want:
                    raise GuideError(f"{name}: graph.{key} is {int(got)} but the guide's space has {want}")

    def guidance(self, alpha: Tensor, graph: Data | None) -> Tensor:
        """The update ``Z`` ``[num_cells * E, K]`` (before scaling by gamma)."""
        raise NotImplementedError

    def bound(self, z: Tensor, alpha: Tensor) -> Tensor:
        """Rescales each cell's update to below that cell's alpha norm (see the class docstring).

        ``||alpha_k||`` is a stop-gradient: the bound limits the update, it gives alpha no reason to grow.
        """
        L = self.space.num_cells
        zc = z.reshape(L, -1)
        a = alpha.detach().reshape(L, -1).norm(dim=1, keepdim=True)
        # sqrt(sum z^2 + tiny) instead of the norm: finite gradient at z = 0 (cell 0 has no update).
        m = (zc.pow(2).sum(dim=1, keepdim=True) + 1e-30).sqrt()
        return (zc * (a / (m + a))).reshape_as(z)

    def forward(self, alpha: Tensor, graph: Data | None = None) -> Tensor:
        """Maps alpha to alpha'.

        Args:
            alpha (Tensor): Architecture parameters ``[num_cells * E, K]`` aligned with the ArchGraph.
            graph (Data, optional): The ArchGraph (from :meth:`SearchSpace.arch_graph`); only needed by
                guides that read its ``edge_index``. (default: :obj:`None`)

        Returns:
            Tensor: alpha' ``[num_cells * E, K]``.
        """
        self.check(alpha, graph)
        gamma = self.scale()
        if not isinstance(gamma, Tensor) and gamma == 0.0:
            return alpha
        z = self.guidance(alpha, graph)
        if self.bounded:
            z = self.bound(z, alpha)
        return alpha + gamma * z

    def attention(self) -> list[tuple[Tensor, Tensor]]:
        """``(edge_index, A)`` of every attention layer in the last forward (empty: no attention)."""
        return []

    def regularizer(self) -> Tensor | None:
        """The guide's auxiliary loss from its last forward (with gradient), or :obj:`None` without one.

        The search adds it to the architecture loss after each architecture forward
        (``loss_a = CE + latency term + guide.regularizer()``). The base class has none.
        """
        return None

    @torch.no_grad()
    def diagnostics(self, alpha: Tensor, alpha_p: Tensor) -> dict[str, float]:
        """``guide_attention_entropy``, ``guide_distinct_sources`` (distinct arg-max sources per cell,
        the mean over cells; both NaN without attention) and ``guide_update_ratio``
        (``||alpha' - alpha|| / ||alpha||``), after the forward that computed ``alpha_p`` from ``alpha``.

        Args:
            alpha (Tensor): alpha ``[num_cells * E, K]``.
            alpha_p (Tensor): alpha' of the last forward.

        Returns:
            dict: ``{name: value}`` (:data:`gasgnn.ggm.diagnostics.DIAGNOSTICS`).
        """
        return attention_diagnostics(self.attention(), alpha, alpha_p, self.space.edges_per_cell)

    def extra_repr(self) -> str:
        g = f"{self._gamma_init}, learnable" if self.learn_gamma else f"{self._gamma_init}"
        return f"gamma={g}" + (", bounded=True" if self.bounded else "")


def guide_regularizer(guide: nn.Module) -> Tensor | float:
    """The auxiliary loss of a guide's last forward (:meth:`Guide.regularizer`, or the same method of any
    module), 0 when it has none. The search adds it to the architecture loss right after the architecture
    forward: ``loss_a = CE + latency term + guide_regularizer(guide)``."""
    reg = guide.regularizer() if callable(getattr(guide, "regularizer", None)) else None
    return 0.0 if reg is None else reg
