"""Morphable-model reconstruction: 3DMM coefficients + pose -> vertices, in one fused pass.

Conventions (3DDFA): the pose is a row-major 3x4 matrix ``[f*R | t]``; bases are
interleaved (rows x0, y0, z0, x1, ...); vertices are

    s_v = mean_v + A_id,v a_id + A_exp,v a_exp,     x_v = P[:, :3] s_v + P[:, 3].

The compiled op tiles over vertices and never materialises the (B, 3N) shape.
Gradients flow to the pose and the coefficients; the mean and the bases are
constants (keep them as buffers or ``.detach()`` them).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from . import _lib
from . import _reference_morphable as _ref

__all__ = ["morphable_reconstruct", "morphable_reconstruct_params", "MorphableReconstruct"]


def _check_bases_constant(op: str, mean, id_basis, exp_basis) -> None:
    if not torch.is_grad_enabled():
        return
    for name, t in (("mean", mean), ("id_basis", id_basis), ("exp_basis", exp_basis)):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            raise ValueError(
                f"pyface3d.{op}: argument `{name}` requires grad, but this op does not "
                f"differentiate with respect to the mean or the bases; pass the basis as a "
                f"buffer / .detach() it (or use pyface3d.ops.reference for a differentiable basis)")


def morphable_reconstruct(pose: torch.Tensor, id_coeff: torch.Tensor, exp_coeff: torch.Tensor,
                          mean: torch.Tensor, id_basis: torch.Tensor, exp_basis: torch.Tensor,
                          vertex_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Vertices of a 3D morphable model under a scaled-orthographic pose.

    Args:
        pose: (B, 3, 4) ``[f*R | t]`` (row-major 3x4, 3DDFA convention).
        id_coeff: (B, I) identity coefficients.
        exp_coeff: (B, E) expression coefficients.
        mean: (3N,) mean shape, interleaved x0, y0, z0, x1, ...
        id_basis: (3N, I) identity basis (same interleaving of the rows).
        exp_basis: (3N, E) expression basis.
        vertex_ids: optional (M,) int64/int32 vertex indices in [0, N) (e.g. the 68
            landmark vertices); default all N vertices.

    Returns:
        (B, M, 3) vertices ``P[:, :3] s_v + P[:, 3]`` (M = N without ``vertex_ids``).

    Differentiable w.r.t. ``pose``, ``id_coeff`` and ``exp_coeff``. float32/float64,
    all floating inputs of one dtype. Raises ValueError (shapes, bases requiring
    grad), TypeError (dtypes), IndexError (``vertex_ids`` out of range).
    """
    _check_bases_constant("morphable_reconstruct", mean, id_basis, exp_basis)
    if _lib.HAS_C:
        return torch.ops.pyface3d.morphable_reconstruct(pose, id_coeff, exp_coeff, mean,
                                                        id_basis, exp_basis, vertex_ids)
    _lib.warn_fallback("morphable_reconstruct")
    return _ref.morphable_reconstruct(pose, id_coeff, exp_coeff, mean, id_basis, exp_basis,
                                      vertex_ids)


def morphable_reconstruct_params(params: torch.Tensor, mean: torch.Tensor,
                                 id_basis: torch.Tensor, exp_basis: torch.Tensor,
                                 vertex_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Vertices from a 3DDFA parameter vector.

    Args:
        params: (B, 12 + I + E): 12 pose entries (row-major ``[f*R | t]``), then I
            identity and E expression coefficients (I, E from the basis shapes;
            3DDFA: 62 = 12 + 40 + 10). De-whitened values (``out * std + mean``).
        mean, id_basis, exp_basis, vertex_ids: as in :func:`morphable_reconstruct`.

    Returns:
        (B, M, 3) vertices. Raises ValueError when the width of ``params`` does not
        match the bases.
    """
    if not isinstance(params, torch.Tensor) or params.dim() != 2:
        raise ValueError("pyface3d.morphable_reconstruct_params: argument `params` must have "
                         f"shape (B, 12 + I + E), got {tuple(getattr(params, 'shape', ()))}")
    if id_basis.dim() != 2 or exp_basis.dim() != 2:
        raise ValueError("pyface3d.morphable_reconstruct_params: arguments `id_basis` and "
                         "`exp_basis` must have shape (3N, I) and (3N, E), got "
                         f"{tuple(id_basis.shape)} and {tuple(exp_basis.shape)}")
    pose, a, e = _ref.split_params(params, id_basis.shape[1], exp_basis.shape[1])
    return morphable_reconstruct(pose, a, e, mean, id_basis, exp_basis, vertex_ids)


class MorphableReconstruct(nn.Module):
    """Module form holding the mean and bases as buffers.

    ``forward(pose, id_coeff, exp_coeff, vertex_ids=None)`` or, with only one
    argument, ``forward(params)`` with params (B, 12 + I + E). Shapes as in
    :func:`morphable_reconstruct`. ``vertex_ids`` given at construction (e.g. the
    68 landmark vertices) is the default subset.
    """

    def __init__(self, mean: torch.Tensor, id_basis: torch.Tensor, exp_basis: torch.Tensor,
                 vertex_ids: Optional[torch.Tensor] = None):
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("id_basis", id_basis.detach().clone())
        self.register_buffer("exp_basis", exp_basis.detach().clone())
        self.register_buffer("vertex_ids",
                             None if vertex_ids is None else vertex_ids.detach().clone().long())

    @property
    def num_id(self) -> int:
        return self.id_basis.shape[1]

    @property
    def num_exp(self) -> int:
        return self.exp_basis.shape[1]

    def forward(self, pose: torch.Tensor, id_coeff: Optional[torch.Tensor] = None,
                exp_coeff: Optional[torch.Tensor] = None,
                vertex_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        ids = self.vertex_ids if vertex_ids is None else vertex_ids
        if id_coeff is None and exp_coeff is None:
            return morphable_reconstruct_params(pose, self.mean, self.id_basis,
                                                self.exp_basis, ids)
        if id_coeff is None or exp_coeff is None:
            raise ValueError("MorphableReconstruct: give either params alone or pose, id_coeff "
                             "and exp_coeff")
        return morphable_reconstruct(pose, id_coeff, exp_coeff, self.mean, self.id_basis,
                                     self.exp_basis, ids)

    def extra_repr(self) -> str:
        n = self.mean.shape[0] // 3
        m = "all" if self.vertex_ids is None else self.vertex_ids.shape[0]
        return f"N={n}, I={self.num_id}, E={self.num_exp}, vertices={m}"


# ---- torch.library registrations (fake kernels, autograd) ------------------
if _lib.HAS_C:

    @torch.library.register_fake("pyface3d::morphable_reconstruct")
    def _fake_forward(pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids=None):
        torch._check(pose.dim() == 3, lambda: "pose must be (B, 3, 4)")
        torch._check(mean.dim() == 1, lambda: "mean must be (3N,)")
        M = vertex_ids.shape[0] if vertex_ids is not None else mean.shape[0] // 3
        return pose.new_empty((pose.shape[0], M, 3))

    @torch.library.register_fake("pyface3d::_morphable_reconstruct_backward")
    def _fake_backward(grad_vertices, pose, id_coeff, exp_coeff, mean, id_basis, exp_basis,
                       vertex_ids):
        return (pose.new_empty(pose.shape), id_coeff.new_empty(id_coeff.shape),
                exp_coeff.new_empty(exp_coeff.shape))

    def _setup_context(ctx, inputs, output):
        pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids = inputs
        for name, t in (("mean", mean), ("id_basis", id_basis), ("exp_basis", exp_basis)):
            if t.requires_grad:
                raise ValueError(
                    f"pyface3d.morphable_reconstruct: argument `{name}` requires grad, but this "
                    "op does not differentiate with respect to the mean or the bases; pass the "
                    "basis as a buffer / .detach() it")
        ctx.save_for_backward(pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids)

    def _backward(ctx, grad):
        pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids = ctx.saved_tensors
        gp, gi, ge = torch.ops.pyface3d._morphable_reconstruct_backward(
            grad, pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids)
        return gp, gi, ge, None, None, None, None

    torch.library.register_autograd("pyface3d::morphable_reconstruct", _backward,
                                    setup_context=_setup_context)
