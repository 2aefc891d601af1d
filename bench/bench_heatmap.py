"""Benchmarks of the heatmap family against vectorised-torch baselines.

Sizes: B = 64, K = 68 and 98 landmarks, 64x64 maps, sigma 2, float32 (quick: B = 8).
* heatmap_encode vs the reference (dense exp over every pixel): target >= 10x;
  and vs torch.zeros of the output size (the cost of writing the output once):
  target within 3x (ratio >= 1/3). 2 threads (the 2-core CPU target).
* heatmap_decode "none" and "dark" vs the reference (whole-map conv2d blur for DARK):
  target >= 5x for "dark".
* soft_argmax forward+backward vs the autograd reference (softmax + sums).
"""
from __future__ import annotations

from typing import List

import torch

from bench.harness import Case
from pyface3d.ops import _reference_heatmap as ref
from pyface3d.ops import heatmap


def _points(B, K, H, W, g, device):
    p = torch.rand(B, K, 2, generator=g) * torch.tensor([W - 1.0, H - 1.0])
    return p.to(device)


def _soft_fwd_bwd(fn, x, gc):
    def run():
        xr = x.detach().requires_grad_()
        fn(xr, 1.0).backward(gc)
    return run


def cases(device: str, quick: bool) -> List[Case]:
    g = torch.Generator().manual_seed(0)
    B = 8 if quick else 64
    H = W = 64
    sigma = 2.0
    threads = 2 if device == "cpu" else None
    out: List[Case] = []
    for K in (68, 98):
        shape = (B, K, H, W)
        pts = _points(B, K, H, W, g, device)
        vis = (torch.rand(B, K, generator=g) > 0.1).to(device)
        mb = B * K * H * W * 4 / 1e6
        out.append(Case(
            name=f"heatmap_encode {shape} s={sigma} f32",
            fn=lambda pts=pts, vis=vis: heatmap.heatmap_encode(pts, vis, H, W, sigma),
            baseline=lambda pts=pts, vis=vis: ref.heatmap_encode(pts, vis, H, W, sigma),
            baseline_name="reference", target=">= 10x reference", target_ratio=10.0,
            threads=threads, extra=lambda mb=mb: {"note": f"{mb:.0f} MB written"}))
        out.append(Case(
            name=f"heatmap_encode {shape} vs zeros",
            fn=lambda pts=pts, vis=vis: heatmap.heatmap_encode(pts, vis, H, W, sigma),
            baseline=lambda shape=shape: torch.zeros(shape, device=device),
            baseline_name="torch.zeros", target="within 3x of torch.zeros",
            target_ratio=1 / 3, threads=threads))
        hm, _ = heatmap.heatmap_encode(pts, None, H, W, sigma)
        hm = hm + 0.01 * torch.rand(shape, generator=g).to(device)
        out.append(Case(
            name=f"heatmap_decode none {shape} f32",
            fn=lambda hm=hm: heatmap.heatmap_decode(hm, "none"),
            baseline=lambda hm=hm: ref.heatmap_decode(hm, "none"),
            baseline_name="reference", target="", threads=threads))
        out.append(Case(
            name=f"heatmap_decode dark k=11 {shape} f32",
            fn=lambda hm=hm: heatmap.heatmap_decode(hm, "dark", 11),
            baseline=lambda hm=hm: ref.heatmap_decode(hm, "dark", 11),
            baseline_name="reference (conv2d blur)", target=">= 5x reference",
            target_ratio=5.0, threads=threads))
        x = torch.randn(shape, generator=g).to(device)
        gc = torch.randn(B, K, 2, generator=g).to(device)
        out.append(Case(
            name=f"soft_argmax fwd+bwd {shape} f32",
            fn=_soft_fwd_bwd(heatmap.soft_argmax, x, gc),
            baseline=_soft_fwd_bwd(ref.soft_argmax, x, gc),
            baseline_name="autograd reference", target="", threads=threads))
    return out
