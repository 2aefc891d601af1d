"""Pure-PyTorch references of the heatmap ops (test oracle and fallback).

Vectorised torch, same signatures and semantics as :mod:`pyface3d.ops.heatmap`
(see ``docs/ops_heatmap.md``). They compute in float32 (float64 when the
inputs or the output are float64); the compiled kernels compute the Gaussian
factors and the DARK step in float64, so float32 results agree to ~1e-6.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["heatmap_encode", "heatmap_decode", "soft_argmax"]

_REFINE = ("none", "quarter", "dark")
MAX_BLUR_KERNEL = 255
DARK_EPS = 1e-10


def _check_maps(op: str, heatmaps: torch.Tensor, dtypes) -> None:
    if heatmaps.dim() != 4 or heatmaps.shape[2] < 1 or heatmaps.shape[3] < 1:
        raise ValueError(f"pyface3d.{op}: argument `heatmaps` must have shape (B, K, H, W) with "
                         f"H, W >= 1, got shape {tuple(heatmaps.shape)}")
    if heatmaps.dtype not in dtypes:
        raise TypeError(f"pyface3d.{op}: argument `heatmaps` must have dtype in {dtypes}, "
                        f"got {heatmaps.dtype}")


def heatmap_encode(points: torch.Tensor, visibility: Optional[torch.Tensor], height: int,
                   width: int, sigma: float, unbiased: bool = True,
                   dtype: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`pyface3d.ops.heatmap.heatmap_encode`: (B, K, 2) -> (B, K, H, W), (B, K)."""
    if points.dim() != 3 or points.shape[2] != 2:
        raise ValueError(f"pyface3d.heatmap_encode: argument `points` must have shape (B, K, 2), "
                         f"got shape {tuple(points.shape)}")
    if points.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"pyface3d.heatmap_encode: argument `points` must be float32/float64, "
                        f"got {points.dtype}")
    if height < 1 or width < 1:
        raise ValueError("pyface3d.heatmap_encode: arguments `height`, `width` must be >= 1")
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"pyface3d.heatmap_encode: argument `sigma` must be finite and > 0, "
                         f"got {sigma}")
    out_dtype = torch.float32 if dtype is None else dtype
    if out_dtype not in (torch.float16, torch.float32, torch.float64):
        raise TypeError(f"pyface3d.heatmap_encode: argument `dtype` must be one of float16, "
                        f"float32, float64 (or None), got {out_dtype}")
    cdt = torch.float64 if torch.float64 in (points.dtype, out_dtype) else torch.float32
    dev = points.device
    # centre, rounding and validity in float64 (as the kernels)
    p64 = points.to(torch.float64)
    r = torch.floor(p64 + 0.5)
    valid = (torch.isfinite(p64).all(-1) & (r[..., 0] >= 0) & (r[..., 0] <= width - 1)
             & (r[..., 1] >= 0) & (r[..., 1] <= height - 1))
    if visibility is not None:
        valid = valid & (visibility > 0)
    c64 = p64 if unbiased else r
    c64 = torch.where(valid[..., None], c64, torch.zeros_like(c64))
    xs = torch.arange(width, dtype=torch.float64, device=dev)
    ys = torch.arange(height, dtype=torch.float64, device=dev)
    inx = (xs - c64[..., 0, None]).abs() <= 3.0 * sigma  # (B, K, W)
    iny = (ys - c64[..., 1, None]).abs() <= 3.0 * sigma  # (B, K, H)
    c = c64.to(cdt)
    dx = xs.to(cdt) - c[..., 0, None]
    dy = ys.to(cdt) - c[..., 1, None]
    d2 = dx[..., None, :] ** 2 + dy[..., :, None] ** 2  # (B, K, H, W)
    mask = iny[..., :, None] & inx[..., None, :] & valid[..., None, None]
    hm = torch.exp(d2 * (-1.0 / (2.0 * sigma * sigma))) * mask
    return hm.to(out_dtype), valid.to(torch.float32)


def _reflect101(i: torch.Tensor, n: int) -> torch.Tensor:
    if n == 1:
        return torch.zeros_like(i)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _dark_blur(hm: torch.Tensor, k: int) -> torch.Tensor:
    """Separable Gaussian blur of (N, H, W) maps, reflect-101 border (any size)."""
    N, H, W = hm.shape
    r = (k - 1) // 2
    s = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    t = torch.arange(-r, r + 1, dtype=torch.float64, device=hm.device)
    w = torch.exp(-t * t / (2 * s * s))
    w = (w / w.sum()).to(hm.dtype)
    ix = _reflect101(torch.arange(-r, W + r, device=hm.device), W)
    iy = _reflect101(torch.arange(-r, H + r, device=hm.device), H)
    x = hm.index_select(2, ix).unsqueeze(1)  # (N, 1, H, W + 2r)
    x = F.conv2d(x, w.view(1, 1, 1, k))  # horizontal first
    x = x.index_select(2, iy)
    x = F.conv2d(x, w.view(1, 1, k, 1))
    return x.squeeze(1)


def heatmap_decode(heatmaps: torch.Tensor, refine: str = "none",
                   blur_kernel: int = 11) -> Tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`pyface3d.ops.heatmap.heatmap_decode`: (B, K, H, W) -> (B, K, 2), (B, K)."""
    op = "heatmap_decode"
    _check_maps(op, heatmaps, (torch.float16, torch.float32, torch.float64))
    if refine not in _REFINE:
        raise ValueError(f"pyface3d.{op}: argument `refine` must be one of 'none', 'quarter', "
                         f"'dark', got {refine!r}")
    if not (3 <= blur_kernel <= MAX_BLUR_KERNEL and blur_kernel % 2 == 1):
        raise ValueError(f"pyface3d.{op}: argument `blur_kernel` must be an odd integer in "
                         f"[3, {MAX_BLUR_KERNEL}], got {blur_kernel}")
    B, K, H, W = heatmaps.shape
    cdt = torch.float64 if heatmaps.dtype == torch.float64 else torch.float32
    hm = heatmaps.to(cdt).reshape(B * K, H * W)
    # first maximum, NaN below every number; all-NaN -> index 0
    mx = torch.where(torch.isnan(hm), torch.full_like(hm, -math.inf), hm).amax(-1, keepdim=True)
    idx = (hm == mx).to(torch.uint8).argmax(-1)
    score = hm.gather(1, idx[:, None]).squeeze(1)
    px, py = idx % W, idx // W
    x, y = px.to(cdt), py.to(cdt)
    maps = hm.view(B * K, H, W)
    n = torch.arange(B * K, device=hm.device)

    def at(m, yy, xx):
        return m[n, yy.clamp(0, H - 1), xx.clamp(0, W - 1)]

    if refine == "quarter":
        okx = (px > 0) & (px < W - 1)
        oky = (py > 0) & (py < H - 1)
        sx = torch.sign(at(maps, py, px + 1) - at(maps, py, px - 1)).nan_to_num(0.0)
        sy = torch.sign(at(maps, py + 1, px) - at(maps, py - 1, px)).nan_to_num(0.0)
        x = x + torch.where(okx, 0.25 * sx, torch.zeros_like(sx))
        y = y + torch.where(oky, 0.25 * sy, torch.zeros_like(sy))
    elif refine == "dark" and B * K > 0:
        bl = _dark_blur(maps, blur_kernel)
        L = torch.log(bl.clamp(min=DARK_EPS))  # NaN stays NaN

        def l(dy, dx):
            return at(L, py + dy, px + dx)

        c = l(0, 0)
        dx = 0.5 * (l(0, 1) - l(0, -1))
        dy = 0.5 * (l(1, 0) - l(-1, 0))
        dxx = 0.25 * (l(0, 2) - 2 * c + l(0, -2))
        dyy = 0.25 * (l(2, 0) - 2 * c + l(-2, 0))
        dxy = 0.25 * (l(1, 1) - l(-1, 1) - l(1, -1) + l(-1, -1))
        det = dxx * dyy - dxy * dxy
        ox = -(dyy * dx - dxy * dy) / det
        oy = -(dxx * dy - dxy * dx) / det
        ok = ((px > 1) & (px < W - 2) & (py > 1) & (py < H - 2) & (det != 0)
              & torch.isfinite(det) & ~torch.isnan(ox) & ~torch.isnan(oy))
        zero = torch.zeros_like(ox)
        x = x + torch.where(ok, ox.clamp(-1, 1), zero)
        y = y + torch.where(ok, oy.clamp(-1, 1), zero)
    coords = torch.stack((x, y), -1).reshape(B, K, 2)
    return coords, score.reshape(B, K)


def soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Reference of :func:`pyface3d.ops.heatmap.soft_argmax`: (B, K, H, W) -> (B, K, 2)."""
    op = "soft_argmax"
    _check_maps(op, heatmaps, (torch.float32, torch.float64))
    if not math.isfinite(beta):
        raise ValueError(f"pyface3d.{op}: argument `beta` must be finite, got {beta}")
    B, K, H, W = heatmaps.shape
    p = torch.softmax(beta * heatmaps.reshape(B, K, H * W), -1).view(B, K, H, W)
    xs = torch.arange(W, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.arange(H, dtype=heatmaps.dtype, device=heatmaps.device)
    x = (p.sum(-2) * xs).sum(-1)
    y = (p.sum(-1) * ys).sum(-1)
    return torch.stack((x, y), -1)
