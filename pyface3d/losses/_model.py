"""Duck-typed access to a morphable model (``pyface3d.morphable.MorphableModel``-like).

The losses, metrics and fitter only need the attributes of the shared interface:
``mean (3N,)``, ``id_basis (3N, I)``, ``exp_basis (3N, E)``, ``landmarks68 (68,)`` and
``param_mean``/``param_std`` ``(12 + I + E,)``. Any object carrying them works (the tests use
a ``types.SimpleNamespace`` with random bases).
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["check_model", "num_params", "subset_rows"]


def check_model(model, who: str, need_whitening: bool = True) -> None:
    """Raise a clear error when ``model`` lacks an attribute of the shared interface."""
    names = ["mean", "id_basis", "exp_basis"] + (["param_mean", "param_std"] if need_whitening
                                                 else [])
    for name in names:
        value = getattr(model, name, None)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{who}: argument `model` must have a tensor attribute `{name}` "
                            f"(MorphableModel interface), got {type(value).__name__}")
    mean, idb, expb = model.mean, model.id_basis, model.exp_basis
    if mean.dim() != 1 or mean.shape[0] % 3 != 0:
        raise ValueError(f"{who}: `model.mean` must have shape (3N,), got {tuple(mean.shape)}")
    for name, basis in (("id_basis", idb), ("exp_basis", expb)):
        if basis.dim() != 2 or basis.shape[0] != mean.shape[0]:
            raise ValueError(f"{who}: `model.{name}` must have shape (3N, K) with 3N = "
                             f"{mean.shape[0]}, got {tuple(basis.shape)}")
    if need_whitening:
        p = num_params(model)
        for name in ("param_mean", "param_std"):
            t = getattr(model, name)
            if t.shape != (p,):
                raise ValueError(f"{who}: `model.{name}` must have shape ({p},) = 12 + I + E, "
                                 f"got {tuple(t.shape)}")
        if not bool((model.param_std > 0).all()):
            raise ValueError(f"{who}: `model.param_std` must be > 0 everywhere")


def num_params(model) -> int:
    """12 + I + E."""
    return 12 + model.id_basis.shape[1] + model.exp_basis.shape[1]


def num_vertices(model) -> int:
    return model.mean.shape[0] // 3


def check_vertex_ids(ids: torch.Tensor, n: int, who: str, arg: str = "vertex_ids") -> torch.Tensor:
    """Validate a vertex-id tensor (M,) integer in [0, n); returns it as int64."""
    if not isinstance(ids, torch.Tensor):
        ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool:
        raise ValueError(f"{who}: argument `{arg}` must be a 1-D integer tensor, got "
                         f"shape {tuple(ids.shape)} dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
        raise IndexError(f"{who}: argument `{arg}` has ids outside [0, {n})")
    return ids.long()


def subset_rows(model, vertex_ids: Optional[torch.Tensor], device=None, dtype=None):
    """The rows of mean and bases for ``vertex_ids`` (interleaved x, y, z per vertex).

    Returns ``(mean (3M,), id_basis (3M, I), exp_basis (3M, E))`` detached, on ``device`` in
    ``dtype`` (defaults: the model's). ``vertex_ids=None`` means all vertices.
    """
    mean, idb, expb = model.mean.detach(), model.id_basis.detach(), model.exp_basis.detach()
    if vertex_ids is not None:
        ids = vertex_ids.to(mean.device).long()
        rows = torch.stack((3 * ids, 3 * ids + 1, 3 * ids + 2), dim=1).reshape(-1)
        mean, idb, expb = mean[rows], idb[rows], expb[rows]
    kw = {}
    if device is not None:
        kw["device"] = device
    if dtype is not None:
        kw["dtype"] = dtype
    return mean.to(**kw).contiguous(), idb.to(**kw).contiguous(), expb.to(**kw).contiguous()
