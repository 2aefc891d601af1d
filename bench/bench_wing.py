"""Benchmarks of the Wing family against the autograd references (vectorised torch).

* Wing forward+backward on BFM-sized vertex sets (64, 38365, 3) float32: target >= 3x.
* Wing forward alone.
* Adaptive Wing forward+backward on 68-landmark heatmaps (64, 68, 64, 64) float32; the
  reference builds the weight map with max_pool2d.
"""
from __future__ import annotations

from typing import List

import torch

from bench.harness import Case
from pyface3d.ops import _reference_wing as ref
from pyface3d.ops import wing


def _fwd_bwd(loss_fn, pred, target, **kw):
    def run():
        p = pred.detach().requires_grad_()
        loss_fn(p, target, **kw).backward()
    return run


def cases(device: str, quick: bool) -> List[Case]:
    g = torch.Generator().manual_seed(0)
    B = 8 if quick else 64
    shape = (B, 38365, 3)
    pred = (torch.randn(shape, generator=g) * 5).to(device)
    target = (torch.randn(shape, generator=g) * 5).to(device)
    n = pred.numel()
    out = [
        Case(name=f"wing_loss fwd+bwd {tuple(shape)} f32",
             fn=_fwd_bwd(wing.wing_loss, pred, target, omega=10.0, epsilon=2.1),
             baseline=_fwd_bwd(ref.wing_loss, pred, target, omega=10.0, epsilon=2.1),
             baseline_name="autograd reference", target=">= 3x", target_ratio=3.0,
             extra=lambda: {"note": f"{n * 4 * 5 / 1e6:.0f} MB moved (2 reads fwd, 2 reads + "
                                    "1 write bwd)"}),
        Case(name=f"wing_loss fwd {tuple(shape)} f32",
             fn=lambda: wing.wing_loss(pred, target, 10.0, 2.1),
             baseline=lambda: ref.wing_loss(pred, target, 10.0, 2.1),
             baseline_name="reference", target=""),
    ]
    Bh = 4 if quick else 64
    hshape = (Bh, 68, 64, 64)
    H, W = hshape[2:]
    ys = torch.arange(H, dtype=torch.float32).view(1, 1, H, 1)
    xs = torch.arange(W, dtype=torch.float32).view(1, 1, 1, W)
    cy = torch.rand(Bh, 68, 1, 1, generator=g) * H
    cx = torch.rand(Bh, 68, 1, 1, generator=g) * W
    ht = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 1.5 ** 2))
    hp = ht + 0.1 * torch.randn(hshape, generator=g)
    ht, hp = ht.to(device), hp.to(device)
    out.append(Case(name=f"adaptive_wing_loss fwd+bwd {tuple(hshape)} f32",
                    fn=_fwd_bwd(wing.adaptive_wing_loss, hp, ht),
                    baseline=_fwd_bwd(ref.adaptive_wing_loss, hp, ht),
                    baseline_name="autograd reference (max_pool2d map)", target=""))
    return out
