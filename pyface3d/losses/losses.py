"""3DMM parameter losses of the thesis, chapter 6 (eq. 6.3-6.8).

All losses take ``pred`` and ``target`` parameter vectors ``(B, P)``, ``P = 12 + I + E``
(3DDFA layout: row-major 3x4 ``[f*R | t]``, I identity, E expression coefficients). By
default both are *whitened* (the network's output space, ``param = x * param_std +
param_mean``); pass ``whitened=False`` for de-whitened parameters. Vertices are
reconstructed with the compiled op :func:`pyface3d.ops.morphable_reconstruct` (gradients flow
through it to ``pred``); the model's mean and bases restricted to the loss's vertex subset are
kept as buffers (``.to(device)`` moves them).

* :class:`WPDCLoss` - weighted parameter distance cost (Zhu et al., 3DDFA, CVPR 2016 /
  TPAMI 2017; thesis eq. 6.3-6.4).
* :class:`VDCLoss` - vertex distance cost (eq. 6.5).
* :class:`WingVertexLoss` - Wing loss on reconstructed vertices (eq. 6.6-6.7).
* :class:`CombinedLoss` and :func:`make_loss` - ``L1 = lambda1 * VDC + WPDC``,
  ``L2 = lambda2 * Wing + WPDC`` (eq. 6.8).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .. import ops
from ._model import check_model, check_vertex_ids, num_vertices, subset_rows

__all__ = ["WPDCLoss", "VDCLoss", "WingVertexLoss", "CombinedLoss", "make_loss",
           "default_vertex_subset", "wpdc_weights", "basis_gram", "LOSS_NAMES"]

LOSS_NAMES = ("wpdc", "vdc", "wing", "l1", "l2")

#: number of extra vertices (besides the 68 landmarks) in the default WPDC subset; 3DDFA
#: resamples 132 random vertices per batch, we use a fixed, evenly spaced set.
DEFAULT_EXTRA_VERTICES = 132

VertexIds = Union[None, str, torch.Tensor, Sequence[int]]


def default_vertex_subset(model, extra: int = DEFAULT_EXTRA_VERTICES) -> torch.Tensor:
    """The fixed vertex subset used by :class:`WPDCLoss` by default.

    The model's 68 landmark vertices (when it has ``landmarks68``) followed by ``extra``
    vertices evenly spaced over the vertex index range (``linspace(0, N - 1, extra)``
    rounded down), duplicates with the landmarks removed. A model with at most
    ``68 + extra`` vertices uses all of them. Returns (M,) int64 on the model's device.
    """
    n = num_vertices(model)
    device = model.mean.device
    lm = getattr(model, "landmarks68", None)
    if n <= 68 + extra:
        return torch.arange(n, device=device)
    spread = torch.linspace(0, n - 1, extra, dtype=torch.float64).floor().long().to(device)
    if lm is None:
        return torch.unique(spread)
    lm = check_vertex_ids(torch.as_tensor(lm, device=device), n, "default_vertex_subset",
                          "model.landmarks68")
    keep = ~torch.isin(spread, lm)
    return torch.cat((lm, torch.unique(spread[keep])))


def _resolve_ids(model, vertex_ids: VertexIds, default: str, who: str) -> Optional[torch.Tensor]:
    n = num_vertices(model)
    if isinstance(vertex_ids, str):
        key = vertex_ids
    elif vertex_ids is None:
        key = default
    else:
        return check_vertex_ids(torch.as_tensor(vertex_ids, device=model.mean.device), n, who)
    if key == "all":
        return None
    if key == "subset":
        return default_vertex_subset(model)
    if key == "landmarks":
        lm = getattr(model, "landmarks68", None)
        if lm is None:
            raise ValueError(f"{who}: vertex_ids='landmarks' needs `model.landmarks68`")
        return check_vertex_ids(torch.as_tensor(lm, device=model.mean.device), n, who,
                                "model.landmarks68")
    raise ValueError(f"{who}: argument `vertex_ids` must be None, 'all', 'subset', "
                     f"'landmarks' or a tensor of vertex ids, got {vertex_ids!r}")


class _ParamLoss(nn.Module):
    """Shared plumbing: whitening statistics and the vertex-subset rows as buffers."""

    def __init__(self, model, vertex_ids: VertexIds, default_ids: str, whitened: bool,
                 who: str):
        super().__init__()
        check_model(model, who)
        self._who = who
        self.whitened = bool(whitened)
        self.num_id = model.id_basis.shape[1]
        self.num_exp = model.exp_basis.shape[1]
        ids = _resolve_ids(model, vertex_ids, default_ids, who)
        mean, idb, expb = subset_rows(model, ids)
        self.register_buffer("mean", mean)
        self.register_buffer("id_basis", idb)
        self.register_buffer("exp_basis", expb)
        self.register_buffer("vertex_ids", ids if ids is not None
                             else torch.arange(num_vertices(model), device=mean.device))
        self.register_buffer("param_mean", model.param_mean.detach().clone())
        self.register_buffer("param_std", model.param_std.detach().clone())

    @property
    def num_params(self) -> int:
        return 12 + self.num_id + self.num_exp

    def _check(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        p = self.num_params
        for name, t in (("pred", pred), ("target", target)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{self._who}: argument `{name}` must be a tensor")
            if t.dim() != 2 or t.shape[1] != p:
                raise ValueError(f"{self._who}: argument `{name}` must have shape (B, {p}), "
                                 f"got {tuple(t.shape)}")
            if t.dtype not in (torch.float32, torch.float64):
                raise TypeError(f"{self._who}: argument `{name}` must be float32/float64, "
                                f"got {t.dtype}")
        if pred.shape != target.shape:
            raise ValueError(f"{self._who}: `pred` {tuple(pred.shape)} and `target` "
                             f"{tuple(target.shape)} differ in shape")
        if pred.dtype != target.dtype:
            raise TypeError(f"{self._who}: `pred` ({pred.dtype}) and `target` "
                            f"({target.dtype}) differ in dtype")

    def _stats(self, dtype):
        return self.param_mean.to(dtype), self.param_std.to(dtype)

    def raw(self, params: torch.Tensor) -> torch.Tensor:
        """De-whitened parameters (identity when ``whitened=False``)."""
        if not self.whitened:
            return params
        m, s = self._stats(params.dtype)
        return params * s + m

    def white(self, params: torch.Tensor) -> torch.Tensor:
        """Whitened parameters (identity when ``whitened=True``)."""
        if self.whitened:
            return params
        m, s = self._stats(params.dtype)
        return (params - m) / s

    def vertices(self, raw_params: torch.Tensor) -> torch.Tensor:
        """(B, M, 3) vertices of the subset from de-whitened parameters (compiled op)."""
        dt = raw_params.dtype
        return ops.morphable_reconstruct_params(raw_params, self.mean.to(dt),
                                                self.id_basis.to(dt), self.exp_basis.to(dt))


def basis_gram(id_basis: torch.Tensor, exp_basis: torch.Tensor) -> torch.Tensor:
    """``G_k = sum_v a_vk a_vk^T`` (K, 3, 3) for the columns of ``[id_basis, exp_basis]``
    (rows interleaved x, y, z per vertex); ``||(fR) A_k||^2 = tr(G_k (fR)^T fR)``."""
    m = id_basis.shape[0] // 3
    basis = torch.cat((id_basis, exp_basis), dim=1).reshape(m, 3, -1)   # (M, 3, K)
    flat = basis.permute(2, 1, 0)                                          # (K, 3, M)
    return flat @ flat.transpose(1, 2)


def wpdc_weights(pred_raw: torch.Tensor, target_raw: torch.Tensor, mean: torch.Tensor,
                 id_basis: torch.Tensor, exp_basis: torch.Tensor, space: str = "3d",
                 normalize: str = "sum", gram: Optional[torch.Tensor] = None) -> torch.Tensor:
    r"""WPDC parameter weights (thesis eq. 6.4), detached.

    ``e_i = || V(p^g with entry i replaced by pred's) - V(p^g) ||`` (Frobenius norm over the
    M vertices given by the rows of ``mean``/bases, all three coordinates for
    ``space="3d"``, x and y only for ``"2d"``, i.e. after the orthographic projection of
    eq. 6.2). Since ``V`` is linear in each single entry, ``e_i`` is computed exactly without
    B*P reconstructions:

    * pose entry ``(r, c)``, ``c < 3``: ``|dP_rc| * ||s[:, c]||`` with ``s`` the pose-free
      shape of ``p^g`` (from the compiled op, identity pose);
    * translation ``(r, 3)``: ``|dt_r| * sqrt(M)``;
    * coefficient ``k``: ``|da_k| * ||(fR)_g A_k||`` over the subset, evaluated as
      ``sqrt(tr(G_k (fR)^T (fR)))`` with ``G_k = sum_v a_vk a_vk^T`` (3x3 per column).

    In ``"2d"`` only the first two pose rows count (the third row then gets weight 0).
    ``normalize="sum"``: ``w = e / sum_i e`` (eq. 6.4); ``"max"``: ``w = e / max_i e``
    (3DDFA's code). A sample whose ``e`` is all zero (``pred == target``) gets all-zero
    weights.

    Args:
        pred_raw, target_raw: (B, 12 + I + E) de-whitened parameters.
        mean, id_basis, exp_basis: (3M,), (3M, I), (3M, E) rows of the vertex subset.
        space: ``"3d"`` or ``"2d"``.
        normalize: ``"sum"`` or ``"max"``.
        gram: optional precomputed :func:`basis_gram` of the bases (K, 3, 3).

    Returns:
        (B, P) weights, no gradient.
    """
    if space not in ("3d", "2d"):
        raise ValueError(f"wpdc_weights: argument `space` must be '3d' or '2d', got {space!r}")
    if normalize not in ("sum", "max"):
        raise ValueError("wpdc_weights: argument `normalize` must be 'sum' or 'max', got "
                         f"{normalize!r}")
    with torch.no_grad():
        pred_raw, target_raw = pred_raw.detach(), target_raw.detach()
        dt = target_raw.dtype
        mean, id_basis, exp_basis = mean.to(dt), id_basis.to(dt), exp_basis.to(dt)
        b = target_raw.shape[0]
        ni, ne = id_basis.shape[1], exp_basis.shape[1]
        m = mean.shape[0] // 3
        delta = (pred_raw - target_raw).abs()
        pose_g = target_raw[:, :12].reshape(b, 3, 4)
        eye = torch.zeros(b, 3, 4, dtype=dt, device=target_raw.device)
        eye[:, 0, 0] = eye[:, 1, 1] = eye[:, 2, 2] = 1.0
        s = ops.morphable_reconstruct(eye, target_raw[:, 12:12 + ni].contiguous(),
                                      target_raw[:, 12 + ni:].contiguous(), mean, id_basis,
                                      exp_basis)                          # (B, M, 3)
        col = torch.cat((s.norm(dim=1), torch.full((b, 1), math.sqrt(m), dtype=dt,
                                                    device=s.device)), dim=1)  # (B, 4)
        e_pose = delta[:, :12].reshape(b, 3, 4) * col[:, None, :]
        rows = 3 if space == "3d" else 2
        if rows == 2:
            e_pose[:, 2, :] = 0
        if gram is None:
            gram = basis_gram(id_basis, exp_basis)
        gram = gram.to(dt)
        fr = pose_g[:, :rows, :3]
        mtm = fr.transpose(1, 2) @ fr                                     # (B, 3, 3)
        # tr(G_k M) = sum_ij G_kij M_ij (both symmetric); may round below 0 -> clamp at 0
        col_norm = (mtm.reshape(b, 9) @ gram.reshape(ni + ne, 9).T).clamp_min(0).sqrt()
        e = torch.cat((e_pose.reshape(b, 12), delta[:, 12:] * col_norm), dim=1)
        den = e.sum(dim=1, keepdim=True) if normalize == "sum" else e.amax(dim=1, keepdim=True)
        safe = torch.where(den > 0, den, torch.ones_like(den))
        return torch.where(den > 0, e / safe, torch.zeros_like(e))


class WPDCLoss(_ParamLoss):
    r"""Weighted Parameter Distance Cost (3DDFA; thesis eq. 6.3-6.4).

    ``loss = mean_b sum_i w_bi (x^g_bi - x^0_bi)^2`` where ``x`` are the *whitened*
    parameters (the network's output scale; with ``whitened=False`` the inputs are whitened
    internally so the value is the same) and ``w`` are the detached weights of
    :func:`wpdc_weights`, computed from the de-whitened parameters on a vertex subset.

    Differences from 3DDFA's code: the weights are normalised by their sum (eq. 6.4) rather
    than by their maximum (``normalize="max"`` gives 3DDFA's), no ``eps`` is added (pred ==
    target gives weight 0, not 1e-6), the z translation is not zeroed in ``space="3d"``
    (``space="2d"`` measures only the projected x, y error, which zeroes the whole third
    pose row), the coefficient weights use the posed basis ``(fR) A_k`` exactly instead of
    3DDFA's fixed ``0.00057 * ||A_k||``, and the vertex subset is fixed (68 landmarks +
    132 evenly spaced vertices, :func:`default_vertex_subset`) instead of resampled per
    batch.

    Args:
        model: MorphableModel-like (``mean``, ``id_basis``, ``exp_basis``, ``param_mean``,
            ``param_std``, optional ``landmarks68``).
        vertex_ids: None / ``"subset"`` (default subset), ``"all"``, ``"landmarks"`` or an
            (M,) tensor of vertex ids.
        whitened: inputs are whitened (True, default) or de-whitened parameters.
        space: ``"3d"`` (default) or ``"2d"``, see :func:`wpdc_weights`.
        normalize: ``"sum"`` (default, eq. 6.4) or ``"max"``.

    Shapes: ``forward(pred (B, P), target (B, P)) -> scalar``.
    """

    def __init__(self, model, vertex_ids: VertexIds = None, whitened: bool = True,
                 space: str = "3d", normalize: str = "sum"):
        super().__init__(model, vertex_ids, "subset", whitened, "WPDCLoss")
        if space not in ("3d", "2d"):
            raise ValueError(f"WPDCLoss: argument `space` must be '3d' or '2d', got {space!r}")
        if normalize not in ("sum", "max"):
            raise ValueError("WPDCLoss: argument `normalize` must be 'sum' or 'max', got "
                             f"{normalize!r}")
        self.space, self.normalize = space, normalize
        # float64 (cast to the input dtype at use): exact for float64 inputs
        self.register_buffer("gram", basis_gram(self.id_basis.double(), self.exp_basis.double()))

    def weights(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, P) detached weights for inputs in this loss's (whitened or not) space."""
        self._check(pred, target)
        return wpdc_weights(self.raw(pred.detach()), self.raw(target.detach()), self.mean,
                            self.id_basis, self.exp_basis, self.space, self.normalize,
                            self.gram)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.weights(pred, target)
        diff = self.white(pred) - self.white(target)
        if pred.shape[0] == 0:
            return diff.sum() * 0
        return (w * diff * diff).sum(dim=1).mean()


class VDCLoss(_ParamLoss):
    r"""Vertex Distance Cost (thesis eq. 6.5).

    ``loss = mean_{b, v} ||V(p^0)_bv - V(p^g)_bv||^2`` (squared Euclidean distance summed
    over x, y, z, averaged over the batch and the vertices; 3DDFA's code also averages over
    the three coordinates, i.e. is 1/3 of this). Vertices in the model's frame after pose
    (3DDFA: 120x120 crop pixels), reconstructed with the compiled op; differentiable with
    respect to ``pred`` (and ``target`` if it requires grad).

    Args:
        model: MorphableModel-like.
        vertex_ids: None / ``"all"`` (default: every vertex), ``"subset"``, ``"landmarks"``
            or an (M,) tensor.
        whitened: inputs whitened (default) or not.
    """

    def __init__(self, model, vertex_ids: VertexIds = None, whitened: bool = True):
        super().__init__(model, vertex_ids, "all", whitened, "VDCLoss")

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(pred, target)
        vp, vt = self.vertices(self.raw(pred)), self.vertices(self.raw(target))
        # mean over (b, v) of the squared distance = 3 * the elementwise mean (one fused op)
        return 3.0 * nn.functional.mse_loss(vp, vt, reduction="mean")


class WingVertexLoss(_ParamLoss):
    r"""Wing loss on reconstructed vertices (thesis eq. 6.6-6.7).

    ``pyface3d.ops.wing_loss(V(p^0), V(p^g), omega, epsilon, reduction="mean")``: the mean
    over the B * M * 3 coordinates of ``omega ln(1 + |d| / epsilon)`` (``|d| < omega``) or
    ``|d| - C``. Thesis defaults ``omega = 10``, ``epsilon = 2.1`` (vertex units: crop
    pixels for 3DDFA-style models).

    Args:
        model: MorphableModel-like.
        omega, epsilon: > 0.
        vertex_ids: None / ``"all"`` (default), ``"subset"``, ``"landmarks"`` or a tensor.
        whitened: inputs whitened (default) or not.
    """

    def __init__(self, model, omega: float = 10.0, epsilon: float = 2.1,
                 vertex_ids: VertexIds = None, whitened: bool = True):
        super().__init__(model, vertex_ids, "all", whitened, "WingVertexLoss")
        if not (omega > 0 and math.isfinite(omega)):
            raise ValueError(f"WingVertexLoss: argument `omega` must be finite > 0, got {omega}")
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError("WingVertexLoss: argument `epsilon` must be finite > 0, got "
                             f"{epsilon}")
        self.omega, self.epsilon = float(omega), float(epsilon)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check(pred, target)
        return ops.wing_loss(self.vertices(self.raw(pred)), self.vertices(self.raw(target)),
                             self.omega, self.epsilon, "mean")


class CombinedLoss(nn.Module):
    """Weighted sum of loss terms, ``sum_k weight_k * term_k(pred, target)``.

    ``terms``: sequence of ``(name, weight, module)``. After each forward, ``last`` holds the
    detached value of every term (for logging) and ``"total"``.
    """

    def __init__(self, terms: Sequence[Tuple[str, float, nn.Module]]):
        super().__init__()
        if not terms:
            raise ValueError("CombinedLoss: argument `terms` must not be empty")
        self.names = [str(t[0]) for t in terms]
        self.weights = [float(t[1]) for t in terms]
        self.terms = nn.ModuleList([t[2] for t in terms])
        self.last: dict = {}

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = None
        last = {}
        for name, w, term in zip(self.names, self.weights, self.terms):
            v = term(pred, target)
            last[name] = v.detach()
            total = w * v if total is None else total + w * v
        last["total"] = total.detach()
        self.last = last
        return total

    def extra_repr(self) -> str:
        return " + ".join(f"{w:g}*{n}" for n, w in zip(self.names, self.weights))


def make_loss(name: str, model, lambda1: float = 1.0, lambda2: float = 0.7,
              whitened: bool = True, wpdc_kw: Optional[dict] = None,
              vdc_kw: Optional[dict] = None, wing_kw: Optional[dict] = None) -> nn.Module:
    """Loss by name.

    * ``"wpdc"``: :class:`WPDCLoss`; ``"vdc"``: :class:`VDCLoss`; ``"wing"``:
      :class:`WingVertexLoss`;
    * ``"l1"``: ``lambda1 * VDC + WPDC`` (eq. 6.8; the thesis' best ``lambda1 = 1``);
    * ``"l2"``: ``lambda2 * Wing + WPDC`` (eq. 6.8; default ``lambda2 = 0.7``, the thesis'
      best).

    ``wpdc_kw``/``vdc_kw``/``wing_kw`` are passed to the respective constructors.
    """
    wpdc_kw, vdc_kw, wing_kw = dict(wpdc_kw or {}), dict(vdc_kw or {}), dict(wing_kw or {})
    key = str(name).lower()
    if key not in LOSS_NAMES:
        raise ValueError(f"make_loss: argument `name` must be one of {LOSS_NAMES}, got {name!r}")
    if key == "wpdc":
        return WPDCLoss(model, whitened=whitened, **wpdc_kw)
    if key == "vdc":
        return VDCLoss(model, whitened=whitened, **vdc_kw)
    if key == "wing":
        return WingVertexLoss(model, whitened=whitened, **wing_kw)
    wpdc = WPDCLoss(model, whitened=whitened, **wpdc_kw)
    if key == "l1":
        return CombinedLoss([("vdc", lambda1, VDCLoss(model, whitened=whitened, **vdc_kw)),
                             ("wpdc", 1.0, wpdc)])
    return CombinedLoss([("wing", lambda2, WingVertexLoss(model, whitened=whitened, **wing_kw)),
                         ("wpdc", 1.0, wpdc)])
