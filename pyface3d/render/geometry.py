"""Mesh geometry for rendering: face / vertex normals and Z-buffer visibility."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

__all__ = ["face_normals", "vertex_normals", "vertex_visibility"]


def face_normals(vertices: Tensor, triangles: Tensor, normalize: bool = True) -> Tensor:
    """Face normals ``cross(v1 - v0, v2 - v0)``.

    vertices (N, 3) or (B, N, 3), triangles (F, 3) -> (F, 3) or (B, F, 3); unit length when
    ``normalize`` (zero-area faces give 0), else twice the area in length.
    """
    t = triangles.long()
    a, b, c = vertices[..., t[:, 0], :], vertices[..., t[:, 1], :], vertices[..., t[:, 2], :]
    n = torch.cross(b - a, c - a, dim=-1)
    if normalize:
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return n


def vertex_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Area-weighted unit vertex normals (sum of the un-normalised face normals).

    vertices (N, 3) or (B, N, 3), triangles (F, 3) -> same shape as ``vertices``.
    The direction follows the winding (counter-clockwise seen from the normal's side in a
    right-handed frame). Note that image space (y down) is a reflection of a y-up model
    frame, so a mesh with outward normals in its model frame has inward ones in image space:
    negate, or let the renderer orient normals toward the camera (``orient=True``).
    Differentiable with respect to ``vertices``.
    """
    t = triangles.long()
    fn = face_normals(vertices, triangles, normalize=False)
    n = torch.zeros_like(vertices)
    for k in range(3):
        n = n.index_add(-2, t[:, k], fn)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def vertex_visibility(vertices: Tensor, depth: Tensor, mask: Tensor, x0: int = 0, y0: int = 0,
                      tol: Optional[float] = None) -> Tensor:
    """Per-vertex visibility from a Z-buffer.

    A vertex (image space, larger z nearer) is visible when its nearest pixel centre
    ``(round(x) - x0, round(y) - y0)`` lies in the window, is covered (``mask``), and
    ``z >= depth - tol`` there. ``tol`` defaults to 1 % of the mesh's extent in z plus
    1 % of its extent in x/y (the depth may change by up to the surface slope times half a
    pixel between a vertex and its pixel centre).

    vertices (B, N, 3), depth (B, H, W), mask (B, H, W) bool -> (B, N) bool.
    """
    if vertices.dim() != 3 or depth.dim() != 3:
        raise ValueError("vertex_visibility: vertices must be (B, N, 3) and depth (B, H, W)")
    B, N, _ = vertices.shape
    H, W = depth.shape[1:]
    v = vertices.detach()
    if tol is None:
        ext = (v.amax(1) - v.amin(1))  # (B, 3)
        tol_t = (0.01 * ext[:, 2] + 0.01 * ext[:, :2].amax(1)).clamp_min(1e-6)[:, None]
    else:
        tol_t = torch.full((B, 1), float(tol), dtype=v.dtype, device=v.device)
    j = torch.round(v[..., 0]).long() - int(x0)
    i = torch.round(v[..., 1]).long() - int(y0)
    inside = (i >= 0) & (i < H) & (j >= 0) & (j < W)
    ic, jc = i.clamp(0, H - 1), j.clamp(0, W - 1)
    flat = ic * W + jc
    zb = depth.reshape(B, -1).gather(1, flat).to(v.dtype)
    cov = mask.reshape(B, -1).gather(1, flat)
    return inside & cov & (v[..., 2] >= zb - tol_t)
