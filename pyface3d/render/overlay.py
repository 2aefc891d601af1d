"""Blend a rendering onto an image."""
from __future__ import annotations


import torch
from torch import Tensor

__all__ = ["overlay"]


def overlay(image: Tensor, rendering: Tensor, mask: Tensor, alpha: float = 0.6, x0: int = 0,
            y0: int = 0) -> Tensor:
    """``image`` with ``(1 - alpha) * image + alpha * rendering`` where ``mask``.

    image (H, W, C) or (B, H, W, C) (any dtype; integer images are rounded and clamped to
    their range); rendering (h, w, C) / (B, h, w, C) and mask (h, w) / (B, h, w) placed with
    their top-left pixel at image pixel (x0, y0) (an ROI render) and clipped to the image.
    Pixels outside the mask are returned unchanged (bit for bit). A single image with a batch
    of renderings gives one output per rendering. Returns a new tensor.
    """
    squeeze = image.dim() == 3
    img = image[None] if squeeze else image
    ren = rendering[None] if rendering.dim() == 3 else rendering
    msk = mask[None] if mask.dim() == 2 else mask
    if ren.shape[-1] == 1 and img.shape[-1] > 1:
        ren = ren.expand(*ren.shape[:-1], img.shape[-1])
    H, W = img.shape[1:3]
    h, w = ren.shape[1:3]
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + w, W), min(y0 + h, H)
    B = max(img.shape[0], ren.shape[0], msk.shape[0])
    if img.shape[0] != B:  # one image, a batch of renderings: one output per rendering
        img = img.expand(B, *img.shape[1:])
    squeeze = squeeze and B == 1
    out = img.contiguous().clone()
    if xb <= xa or yb <= ya:
        return out[0] if squeeze else out
    r = ren[:, ya - y0:yb - y0, xa - x0:xb - x0]
    m = msk[:, ya - y0:yb - y0, xa - x0:xb - x0, None].bool()
    base = out[:, ya:yb, xa:xb]
    blend = (1 - alpha) * base.to(torch.float64) + alpha * r.to(torch.float64)
    if not img.dtype.is_floating_point:
        info = torch.iinfo(img.dtype)
        blend = blend.round().clamp(info.min, info.max)
    blend = blend.to(img.dtype)
    out[:, ya:yb, xa:xb] = torch.where(m, blend, base)
    return out[0] if squeeze else out
