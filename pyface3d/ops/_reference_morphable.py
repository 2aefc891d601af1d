"""Pure-PyTorch references of the morphable ops (test oracle and fallback).

Same signatures and semantics as :mod:`pyface3d.ops.morphable`; vectorised torch:
the shape is one matmul per basis, then the pose.
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["morphable_reconstruct", "morphable_reconstruct_params", "split_params"]


def _check(pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids):
    op = "pyface3d.morphable_reconstruct"
    if pose.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: argument `pose` must have dtype float32 or float64, got {pose.dtype}")
    for name, t in (("id_coeff", id_coeff), ("exp_coeff", exp_coeff), ("mean", mean),
                    ("id_basis", id_basis), ("exp_basis", exp_basis)):
        if t.dtype != pose.dtype:
            raise TypeError(f"{op}: argument `{name}` must have the same dtype as `pose` "
                            f"({pose.dtype}), got {t.dtype}")
    if pose.dim() != 3 or pose.shape[1:] != (3, 4):
        raise ValueError(f"{op}: argument `pose` must have shape (B, 3, 4), got {tuple(pose.shape)}")
    if mean.dim() != 1 or mean.shape[0] % 3:
        raise ValueError(f"{op}: argument `mean` must have shape (3N,), got {tuple(mean.shape)}")
    for name, t in (("id_basis", id_basis), ("exp_basis", exp_basis)):
        if t.dim() != 2 or t.shape[0] != mean.shape[0]:
            raise ValueError(f"{op}: argument `{name}` must have shape (3N, K) with 3N = "
                             f"len(mean) = {mean.shape[0]}, got {tuple(t.shape)}")
    B = pose.shape[0]
    for name, t, basis in (("id_coeff", id_coeff, id_basis), ("exp_coeff", exp_coeff, exp_basis)):
        if t.dim() != 2 or t.shape != (B, basis.shape[1]):
            raise ValueError(f"{op}: argument `{name}` must have shape ({B}, {basis.shape[1]}) "
                             f"(batch of `pose`, columns of the basis), got {tuple(t.shape)}")
    if vertex_ids is not None:
        if vertex_ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"{op}: argument `vertex_ids` must have dtype int64 or int32, got "
                            f"{vertex_ids.dtype}")
        if vertex_ids.dim() != 1:
            raise ValueError(f"{op}: argument `vertex_ids` must have shape (M,), got "
                             f"{tuple(vertex_ids.shape)}")
        n = mean.shape[0] // 3
        if vertex_ids.numel() and (int(vertex_ids.min()) < 0 or int(vertex_ids.max()) >= n):
            raise IndexError(f"{op}: argument `vertex_ids` must hold vertex indices in [0, {n})")


def morphable_reconstruct(pose: torch.Tensor, id_coeff: torch.Tensor, exp_coeff: torch.Tensor,
                          mean: torch.Tensor, id_basis: torch.Tensor, exp_basis: torch.Tensor,
                          vertex_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Reference: ``mean + id_basis @ id.T + exp_basis @ exp.T`` then ``fR s + t``.

    pose (B, 3, 4), id_coeff (B, I), exp_coeff (B, E), mean (3N,), id_basis (3N, I),
    exp_basis (3N, E), vertex_ids (M,) or None -> vertices (B, M, 3).
    """
    _check(pose, id_coeff, exp_coeff, mean, id_basis, exp_basis, vertex_ids)
    B = pose.shape[0]
    if vertex_ids is not None:
        rows = (vertex_ids.long()[:, None] * 3
                + torch.arange(3, device=vertex_ids.device)).reshape(-1)
        mean = mean.index_select(0, rows)
        id_basis = id_basis.index_select(0, rows)
        exp_basis = exp_basis.index_select(0, rows)
    M = mean.shape[0] // 3
    s = mean[:, None] + id_basis @ id_coeff.T + exp_basis @ exp_coeff.T  # (3M, B)
    s = s.T.reshape(B, M, 3)
    return s @ pose[:, :, :3].transpose(1, 2) + pose[:, None, :, 3]


def split_params(params: torch.Tensor, I: int, E: int):
    """(B, 12 + I + E) -> pose (B, 3, 4), id (B, I), exp (B, E) (views)."""
    if params.dim() != 2 or params.shape[1] != 12 + I + E:
        raise ValueError(
            f"pyface3d.morphable_reconstruct_params: argument `params` must have shape "
            f"(B, 12 + I + E) = (B, {12 + I + E}) for I = {I} identity and E = {E} expression "
            f"coefficients (from the bases), got {tuple(params.shape)}")
    B = params.shape[0]
    return params[:, :12].reshape(B, 3, 4), params[:, 12:12 + I], params[:, 12 + I:]


def morphable_reconstruct_params(params: torch.Tensor, mean: torch.Tensor, id_basis: torch.Tensor,
                                 exp_basis: torch.Tensor,
                                 vertex_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Reference of :func:`pyface3d.ops.morphable.morphable_reconstruct_params`."""
    if id_basis.dim() != 2 or exp_basis.dim() != 2:
        raise ValueError("pyface3d.morphable_reconstruct_params: arguments `id_basis` and "
                         "`exp_basis` must have shape (3N, K)")
    pose, a, e = split_params(params, id_basis.shape[1], exp_basis.shape[1])
    return morphable_reconstruct(pose, a, e, mean, id_basis, exp_basis, vertex_ids)
