"""Landmark heatmaps: encode points as Gaussian maps, decode maps to points.

* :func:`heatmap_encode` -- (B, K, 2) points -> (B, K, H, W) Gaussian heatmaps and (B, K)
  target weights (the training target of heatmap-regression networks).
* :func:`heatmap_decode` -- (B, K, H, W) heatmaps -> (B, K, 2) argmax coordinates with
  optional quarter-offset or DARK sub-pixel refinement, and (B, K) scores.
* :func:`soft_argmax` -- differentiable integral decoding (softmax expectation).

Coordinates are (x, y) in heatmap pixels with pixel centres at integers.
Semantics and measured speed: ``docs/ops_heatmap.md``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from . import _lib
from . import _reference_heatmap as _ref

__all__ = ["heatmap_encode", "heatmap_decode", "soft_argmax", "HeatmapEncoder",
           "HeatmapDecoder", "SoftArgmax"]


def heatmap_encode(points: torch.Tensor, visibility: Optional[torch.Tensor], height: int,
                   width: int, sigma: float, unbiased: bool = True,
                   dtype: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render one Gaussian heatmap per landmark.

    Args:
        points: (B, K, 2) float32/float64, (x, y) in heatmap pixels (pixel centres at
            integers).
        visibility: (B, K) bool or real, visible where > 0; ``None``: all visible.
        height, width: map size H, W (>= 1).
        sigma: Gaussian standard deviation in pixels (finite, > 0).
        unbiased: centre the Gaussian on the exact sub-pixel point (DARK / UDP style);
            ``False`` centres it on the rounded pixel ``floor(p + 0.5)`` (peak exactly 1).
        dtype: output dtype, float32 (default), float16 or float64.

    Returns:
        heatmaps: (B, K, H, W), ``exp(-((x-cx)^2+(y-cy)^2) / (2 sigma^2))`` on the pixels with
        ``|x-cx| <= 3 sigma`` and ``|y-cy| <= 3 sigma``, 0 elsewhere.
        target_weight: (B, K) float32, 1 for drawn points; 0 (and an all-zero map) for
        invisible points, non-finite points and points whose rounded centre is outside
        ``[0, W-1] x [0, H-1]``.

    Not differentiable (the inputs are detached).
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.heatmap_encode(
            points.detach(), None if visibility is None else visibility.detach(), int(height),
            int(width), float(sigma), bool(unbiased), dtype)
    _lib.warn_fallback("heatmap.heatmap_encode")
    with torch.no_grad():
        return _ref.heatmap_encode(points, visibility, height, width, sigma, unbiased, dtype)


def heatmap_decode(heatmaps: torch.Tensor, refine: str = "none",
                   blur_kernel: int = 11) -> Tuple[torch.Tensor, torch.Tensor]:
    """Decode heatmaps to landmark coordinates.

    Args:
        heatmaps: (B, K, H, W) float16/float32/float64, H, W >= 1.
        refine: ``"none"`` (integer argmax), ``"quarter"`` (move 0.25 px towards the larger
            neighbour in x and in y) or ``"dark"`` (DARK, Zhang et al. 2020: Newton step on the
            log of the Gaussian-blurred map, offset clipped to [-1, 1]; applied when the
            argmax is at least 2 pixels from the border).
        blur_kernel: DARK blur size k (odd, 3..255); sigma = 0.3 * ((k-1)/2 - 1) + 0.8,
            border reflect-101 (cv2.GaussianBlur's default).

    Returns:
        coords: (B, K, 2) (x, y), float32 (float64 for float64 input).
        scores: (B, K) the map value at the argmax, same dtype as coords.

    The argmax is the first maximum in row-major order; NaN counts as smaller than any
    number; an all-NaN map decodes to (0, 0) with score NaN. Not differentiable.
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.heatmap_decode(heatmaps.detach(), str(refine),
                                                 int(blur_kernel))
    _lib.warn_fallback("heatmap.heatmap_decode")
    with torch.no_grad():
        return _ref.heatmap_decode(heatmaps, refine, blur_kernel)


def soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Differentiable integral decoding (soft-argmax).

    Args:
        heatmaps: (B, K, H, W) float32/float64, H, W >= 1.
        beta: softmax temperature (finite).

    Returns:
        (B, K, 2) (x, y) = (sum p x, sum p y), p = softmax(beta * heatmaps) over each map,
        same dtype as ``heatmaps``. Differentiable in ``heatmaps``.
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.soft_argmax(heatmaps, float(beta))
    _lib.warn_fallback("heatmap.soft_argmax")
    return _ref.soft_argmax(heatmaps, beta)


class HeatmapEncoder(nn.Module):
    """Module form of :func:`heatmap_encode`: forward(points (B, K, 2), visibility=None)
    -> (heatmaps (B, K, H, W), target_weight (B, K))."""

    def __init__(self, height: int, width: int, sigma: float, unbiased: bool = True,
                 dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.height, self.width, self.sigma = int(height), int(width), float(sigma)
        self.unbiased, self.dtype = bool(unbiased), dtype

    def forward(self, points: torch.Tensor, visibility: Optional[torch.Tensor] = None):
        return heatmap_encode(points, visibility, self.height, self.width, self.sigma,
                              self.unbiased, self.dtype)

    def extra_repr(self) -> str:
        return (f"height={self.height}, width={self.width}, sigma={self.sigma}, "
                f"unbiased={self.unbiased}")


class HeatmapDecoder(nn.Module):
    """Module form of :func:`heatmap_decode`: forward(heatmaps (B, K, H, W))
    -> (coords (B, K, 2), scores (B, K))."""

    def __init__(self, refine: str = "none", blur_kernel: int = 11):
        super().__init__()
        self.refine, self.blur_kernel = str(refine), int(blur_kernel)

    def forward(self, heatmaps: torch.Tensor):
        return heatmap_decode(heatmaps, self.refine, self.blur_kernel)

    def extra_repr(self) -> str:
        return f"refine={self.refine!r}, blur_kernel={self.blur_kernel}"


class SoftArgmax(nn.Module):
    """Module form of :func:`soft_argmax`: forward(heatmaps (B, K, H, W)) -> (B, K, 2)."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return soft_argmax(heatmaps, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


if _lib.HAS_C:

    @torch.library.register_fake("pyface3d::heatmap_encode")
    def _encode_fake(points, visibility, height, width, sigma, unbiased=True, dtype=None):
        B, K = points.shape[0], points.shape[1]
        out = torch.float32 if dtype is None else dtype
        return (points.new_empty((B, K, height, width), dtype=out),
                points.new_empty((B, K), dtype=torch.float32))

    @torch.library.register_fake("pyface3d::heatmap_decode")
    def _decode_fake(heatmaps, refine="none", blur_kernel=11):
        B, K = heatmaps.shape[0], heatmaps.shape[1]
        cd = torch.float64 if heatmaps.dtype == torch.float64 else torch.float32
        return (heatmaps.new_empty((B, K, 2), dtype=cd), heatmaps.new_empty((B, K), dtype=cd))

    @torch.library.register_fake("pyface3d::soft_argmax")
    def _soft_argmax_fake(heatmaps, beta=1.0):
        return heatmaps.new_empty((heatmaps.shape[0], heatmaps.shape[1], 2))

    @torch.library.register_fake("pyface3d::_soft_argmax_backward")
    def _soft_argmax_backward_fake(grad_coords, heatmaps, coords, beta):
        return torch.empty_like(heatmaps, memory_format=torch.contiguous_format)

    def _soft_argmax_setup(ctx, inputs, output):
        heatmaps, beta = inputs
        ctx.save_for_backward(heatmaps, output)
        ctx.beta = beta

    def _soft_argmax_bwd(ctx, grad):
        heatmaps, coords = ctx.saved_tensors
        g = None
        if ctx.needs_input_grad[0]:
            g = torch.ops.pyface3d._soft_argmax_backward(grad, heatmaps, coords, ctx.beta)
        return g, None

    torch.library.register_autograd("pyface3d::soft_argmax", _soft_argmax_bwd,
                                    setup_context=_soft_argmax_setup)
