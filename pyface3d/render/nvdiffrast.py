"""Optional nvdiffrast rasterization backend (CUDA only).

Used by :func:`pyface3d.render.rasterize` with ``backend="auto"`` when the ``nvdiffrast``
package is importable and the vertices are on CUDA; otherwise the compiled rasterizer.
It returns the same (face_index, bary, depth) as :func:`pyface3d.ops.rasterize` (float32;
coverage follows nvdiffrast's own rules, so silhouette pixels and exact ties may differ).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ["available", "rasterize"]

_CTX = {}


def _dr():
    try:
        import nvdiffrast.torch as dr  # noqa: WPS433 (optional dependency)
    except Exception:  # ImportError, or a broken build
        return None
    return dr


def available() -> bool:
    """True when nvdiffrast can be imported and CUDA is available."""
    return torch.cuda.is_available() and _dr() is not None


def _context(device):
    dr = _dr()
    key = str(device)
    if key not in _CTX:
        _CTX[key] = dr.RasterizeCudaContext(device=device)
    return _CTX[key]


def rasterize(vertices: Tensor, triangles: Tensor, height: int, width: int, x0: int = 0,
              y0: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """nvdiffrast version of :func:`pyface3d.ops.rasterize` (same conventions)."""
    dr = _dr()
    if dr is None:
        raise RuntimeError("render: nvdiffrast backend requested but nvdiffrast is not installed")
    if not vertices.is_cuda:
        raise RuntimeError("render: the nvdiffrast backend needs CUDA tensors")
    v = vertices.detach().float()
    B = v.shape[0]
    H, W = int(height), int(width)
    # pixel centre (x0 + j, y0 + i) -> NDC ((j + 0.5) / W * 2 - 1, (i + 0.5) / H * 2 - 1);
    # nvdiffrast's row 0 is at NDC y = -1. Depth: nearer (larger z) -> smaller NDC z.
    z = v[..., 2]
    zmin, zmax = z.amin(1, keepdim=True), z.amax(1, keepdim=True)
    zn = 0.9 - 1.8 * (z - zmin) / (zmax - zmin).clamp_min(1e-12)
    pos = torch.stack([(v[..., 0] - x0 + 0.5) / W * 2 - 1, (v[..., 1] - y0 + 0.5) / H * 2 - 1,
                       zn, torch.ones_like(zn)], -1).contiguous()
    tri = triangles.to(device=v.device, dtype=torch.int32).contiguous()
    rast, _ = dr.rasterize(_context(v.device), pos, tri, resolution=[H, W])
    fi = rast[..., 3].round().to(torch.int32) - 1
    mask = fi >= 0
    u, w = rast[..., 0], rast[..., 1]
    bary = torch.stack([u, w, 1 - u - w], -1) * mask[..., None]
    t = tri.long()[fi.clamp_min(0).long()]  # (B, H, W, 3)
    zv = torch.gather(vertices.detach()[..., 2], 1, t.reshape(B, -1)).reshape(t.shape)
    depth = (bary.to(vertices.dtype) * zv).sum(-1) * mask
    return fi, bary.to(vertices.dtype), depth
