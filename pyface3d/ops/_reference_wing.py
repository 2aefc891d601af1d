"""Pure-PyTorch references of the Wing family (test oracle and fallback).

Same signatures and semantics as :mod:`pyface3d.ops.wing`; vectorised torch only.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["wing_loss", "adaptive_wing_loss", "adaptive_wing_weight_map"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(op: str, pred: torch.Tensor, target: torch.Tensor, dim: int, doc: str) -> None:
    for name, t in (("pred", pred), ("target", target)):
        if t.dim() != dim:
            raise ValueError(f"pyface3d.{op}: argument `{name}` must have shape {doc} "
                             f"({dim} dims), got shape {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"pyface3d.{op}: arguments `pred` and `target` must have the same "
                         f"shape {doc}, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"pyface3d.{op}: argument `pred` must have dtype in "
                        f"{{float32, float64}}, got {pred.dtype}")
    if target.dtype != pred.dtype:
        raise TypeError(f"pyface3d.{op}: argument `target` must have the same dtype as `pred` "
                        f"({pred.dtype}), got {target.dtype}")
    if target.device != pred.device:
        raise RuntimeError(f"pyface3d.{op}: argument `target` must be on the same device as "
                           f"`pred` ({pred.device}), got {target.device}")


def _check_positive(op: str, name: str, v: float) -> None:
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"pyface3d.{op}: argument `{name}` must be finite and > 0, got {v}")


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"pyface3d.{op}: argument `reduction` must be one of 'mean', 'sum', "
                         f"'none', got {reduction!r}")


def _check_awing_params(op, alpha, omega, epsilon, theta, weight, threshold, dilation):
    if not math.isfinite(alpha):
        raise ValueError(f"pyface3d.{op}: argument `alpha` must be finite, got {alpha}")
    _check_positive(op, "omega", omega)
    _check_positive(op, "epsilon", epsilon)
    _check_positive(op, "theta", theta)
    if not (math.isfinite(weight) and weight >= 0):
        raise ValueError(f"pyface3d.{op}: argument `weight` must be finite and >= 0, "
                         f"got {weight}")
    if not math.isfinite(threshold):
        raise ValueError(f"pyface3d.{op}: argument `threshold` must be finite, got {threshold}")
    if not (int(dilation) == dilation and dilation >= 1 and dilation % 2 == 1
            and dilation <= (1 << 20)):
        raise ValueError(f"pyface3d.{op}: argument `dilation` must be an odd integer in "
                         f"[1, 1048575], got {dilation}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()  # NaN for empty inputs, as torch.mean
    if reduction == "sum":
        return loss.sum()
    return loss


def wing_loss(pred: torch.Tensor, target: torch.Tensor, omega: float = 10.0,
              epsilon: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    """Reference of :func:`pyface3d.ops.wing.wing_loss`; pred/target (B, N, D)."""
    op = "wing_loss"
    _check_pair(op, pred, target, 3, "(B, N, D)")
    _check_positive(op, "omega", omega)
    _check_positive(op, "epsilon", epsilon)
    _check_reduction(op, reduction)
    x = (pred - target).abs()
    C = omega - omega * math.log1p(omega / epsilon)
    loss = torch.where(x < omega, omega * torch.log1p(x / epsilon), x - C)
    return _reduce(loss, reduction)


def adaptive_wing_weight_map(target: torch.Tensor, weight: float = 10.0,
                             threshold: float = 0.2, dilation: int = 3) -> torch.Tensor:
    """M = 1 + weight * dilate(target > threshold), (B, K, H, W); the square
    dilation x dilation window is clipped at the map border (max_pool2d)."""
    op = "adaptive_wing_weight_map"
    if target.dim() != 4:
        raise ValueError(f"pyface3d.{op}: argument `target` must have shape (B, K, H, W) "
                         f"(4 dims), got shape {tuple(target.shape)}")
    if target.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"pyface3d.{op}: argument `target` must have dtype in "
                        f"{{float32, float64}}, got {target.dtype}")
    _check_awing_params(op, 0.0, 1.0, 1.0, 1.0, weight, threshold, dilation)
    dilation = int(dilation)
    mask = (target > threshold).to(target.dtype)
    if dilation > 1 and mask.numel() > 0:
        B, K, H, W = mask.shape
        mask = F.max_pool2d(mask.reshape(B * K, 1, H, W), dilation, stride=1,
                            padding=dilation // 2).reshape(B, K, H, W)
    return 1.0 + weight * mask


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.1,
                       omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5,
                       weight: float = 10.0, threshold: float = 0.2, dilation: int = 3,
                       reduction: str = "mean") -> torch.Tensor:
    """Reference of :func:`pyface3d.ops.wing.adaptive_wing_loss`; pred/target (B, K, H, W)."""
    op = "adaptive_wing_loss"
    _check_pair(op, pred, target, 4, "(B, K, H, W)")
    _check_awing_params(op, alpha, omega, epsilon, theta, weight, threshold, dilation)
    _check_reduction(op, reduction)
    y = target
    d = (y - pred).abs()
    e = alpha - y
    r = theta / epsilon
    q = torch.pow(r, e)
    A = omega * (1.0 / (1.0 + q)) * e * torch.pow(r, e - 1.0) * (1.0 / epsilon)
    C = theta * A - omega * torch.log1p(q)
    loss = torch.where(d < theta, omega * torch.log1p(torch.pow(d / epsilon, e)), A * d - C)
    if weight != 0:
        loss = loss * adaptive_wing_weight_map(target, weight, threshold, dilation)
    return _reduce(loss, reduction)
