"""Image renderers on the compiled rasterizer (or nvdiffrast on CUDA when installed).

All functions take image-space vertices (B, N, 3) (x right, y down, z toward the camera,
larger z nearer, pixel centres at integers; the :mod:`pyface3d.ops.raster` convention) and
triangles (F, 3), and render a window of the image: either ``height, width`` at ``x0, y0``
or ``roi=(x0, y0, height, width)`` (which overrides them). Output pixel (i, j) is the image
point (x0 + j, y0 + i), so rendering one face into its box of a large frame costs the box
and equals the crop of the full-frame render (see :func:`face_roi`).

Each returns ``(image (B, H, W, C), mask (B, H, W) bool)``; background pixels are 0.
Gradients flow to per-vertex attributes (colours, albedo, normals, UVs), textures and SH
coefficients; not to vertex positions through coverage.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import ops
from . import nvdiffrast as _nvd
from .geometry import vertex_normals
from .shading import shade

__all__ = ["Fragments", "face_roi", "rasterize", "render_depth", "render_pncc",
           "render_normals", "render_albedo", "render_shading", "render_rgb", "render_attributes"]


class Fragments(NamedTuple):
    face_index: Tensor  # (B, H, W) int32, -1 background
    bary: Tensor        # (B, H, W, 3)
    depth: Tensor       # (B, H, W), 0 background
    mask: Tensor        # (B, H, W) bool
    x0: int
    y0: int


def _window(height, width, x0, y0, roi) -> Tuple[int, int, int, int]:
    if roi is not None:
        if len(roi) != 4:
            raise ValueError(f"render: roi must be (x0, y0, height, width), got {roi}")
        x0, y0, height, width = (int(r) for r in roi)
    if height is None or width is None:
        raise ValueError("render: give height and width, or roi=(x0, y0, height, width)")
    return int(height), int(width), int(x0), int(y0)


def face_roi(vertices: Tensor, height: Optional[int] = None, width: Optional[int] = None,
             pad: int = 1) -> Tuple[int, int, int, int]:
    """The box ``(x0, y0, h, w)`` of pixel centres that can be covered by ``vertices``
    (B, N, 3) (all batch elements), grown by ``pad`` pixels and clipped to an image of
    ``height x width`` when given. An empty box is returned as (x0, y0, 1, 1)."""
    v = vertices.detach()[..., :2].reshape(-1, 2)
    lo = torch.floor(v.amin(0)).long() - pad
    hi = torch.ceil(v.amax(0)).long() + pad
    xa, ya, xb, yb = int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])
    if width is not None:
        xa, xb = max(xa, 0), min(xb, int(width) - 1)
    if height is not None:
        ya, yb = max(ya, 0), min(yb, int(height) - 1)
    return xa, ya, max(yb - ya + 1, 1), max(xb - xa + 1, 1)


def rasterize(vertices: Tensor, triangles: Tensor, height: Optional[int] = None,
              width: Optional[int] = None, x0: int = 0, y0: int = 0,
              roi: Optional[Sequence[int]] = None, backend: str = "auto") -> Fragments:
    """Rasterize into a window; ``backend`` is "auto" (nvdiffrast when installed and the
    vertices are on CUDA, else the compiled rasterizer), "compiled" or "nvdiffrast"."""
    H, W, x0, y0 = _window(height, width, x0, y0, roi)
    if backend not in ("auto", "compiled", "nvdiffrast"):
        raise ValueError(f"render: unknown backend {backend!r}")
    use_nvd = backend == "nvdiffrast" or (
        backend == "auto" and vertices.is_cuda and _nvd.available())
    if use_nvd:
        fi, bary, depth = _nvd.rasterize(vertices, triangles, H, W, x0, y0)
    else:
        fi, bary, depth = ops.rasterize(vertices.detach(), triangles, H, W, x0, y0)
    return Fragments(fi, bary, depth, fi >= 0, x0, y0)


def render_attributes(attributes: Tensor, frags: Fragments, triangles: Tensor) -> Tensor:
    """Interpolate per-vertex ``attributes`` (B|1, N, C) over ``frags`` -> (B, H, W, C)."""
    return ops.interpolate(attributes, frags.face_index, frags.bary, triangles)


def render_depth(vertices, triangles, height=None, width=None, x0=0, y0=0, roi=None,
                 backend="auto"):
    """Depth map (B, H, W, 1) (z of the nearest surface, 0 on background) and mask."""
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    return fr.depth[..., None], fr.mask


def render_pncc(vertices, triangles, ncc: Tensor, height=None, width=None, x0=0, y0=0,
                roi=None, backend="auto"):
    """PNCC (B, H, W, 3): the NCC code ``ncc`` (N, 3) (see :func:`pyface3d.ops.ncc_code`
    of the mean shape) interpolated over the posed mesh; and the mask."""
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    code = ncc.to(fr.bary.dtype)
    if code.dim() == 2:
        code = code[None]
    return render_attributes(code, fr, triangles), fr.mask


def _pixel_normals(vertices, triangles, fr, normals, orient):
    if normals is None:
        normals = vertex_normals(vertices.detach(), triangles)
    if normals.dim() == 2:
        normals = normals[None]
    n = render_attributes(normals.to(fr.bary.dtype), fr, triangles)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if orient:
        n = torch.where(n[..., 2:3] < 0, -n, n)
    return n * fr.mask[..., None]


def render_normals(vertices, triangles, height=None, width=None, x0=0, y0=0, roi=None,
                   normals: Optional[Tensor] = None, orient: bool = True, backend="auto"):
    """Unit normal map (B, H, W, 3) in image space, interpolated from vertex normals
    (``normals`` (B|1, N, 3), default :func:`vertex_normals` of ``vertices``) and
    renormalised per pixel. ``orient`` flips normals pointing away from the camera (z < 0),
    which makes the result independent of the winding. Colour-code with ``(n + 1) / 2``."""
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    return _pixel_normals(vertices, triangles, fr, normals, orient), fr.mask


def render_albedo(vertices, triangles, albedo: Tensor, height=None, width=None, x0=0, y0=0,
                  roi=None, backend="auto"):
    """Per-vertex albedo / colours ``albedo`` (B|1, N, C) or (N, C) interpolated -> (B, H, W, C)."""
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    a = albedo[None] if albedo.dim() == 2 else albedo
    return render_attributes(a.to(fr.bary.dtype), fr, triangles), fr.mask


def render_shading(vertices, triangles, sh_coeffs: Tensor, albedo: Optional[Tensor] = None,
                   height=None, width=None, x0=0, y0=0, roi=None,
                   normals: Optional[Tensor] = None, orient: bool = True,
                   per_pixel: bool = True, backend="auto"):
    """Lambertian shading under SH lighting ``sh_coeffs`` (B, 9, 3) (see
    :mod:`pyface3d.render.shading`): ``albedo * E(n) / pi`` -> (B, H, W, 3).

    ``albedo`` per vertex (B|1, N, 3) / (N, 3), or None for white (the shading alone).
    ``per_pixel`` evaluates the SH at interpolated, renormalised normals (Phong-like);
    False shades the vertices and interpolates the colours (Gouraud, like most 3DMM fitting
    code). Normals as in :func:`render_normals`.
    """
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    dt = fr.bary.dtype
    sh = sh_coeffs.to(dt)
    if per_pixel:
        n = _pixel_normals(vertices, triangles, fr, normals, orient)
        if albedo is None:
            a = torch.ones((), dtype=dt, device=n.device)
        else:
            a = render_attributes((albedo[None] if albedo.dim() == 2 else albedo).to(dt), fr,
                                  triangles)
        out = shade(n, a, sh.expand(n.shape[0], 9, 3) if sh.shape[0] == 1 else sh)
    else:
        nv = vertex_normals(vertices.detach(), triangles) if normals is None else normals
        if nv.dim() == 2:
            nv = nv[None]
        nv = nv.to(dt)
        if orient:
            nv = torch.where(nv[..., 2:3] < 0, -nv, nv)
        a = torch.ones((), dtype=dt, device=nv.device) if albedo is None else (
            albedo[None] if albedo.dim() == 2 else albedo).to(dt)
        B = max(nv.shape[0], sh.shape[0])
        col = shade(nv.expand(B, -1, -1), a, sh.expand(B, 9, 3))
        out = render_attributes(col, fr, triangles)
    return out * fr.mask[..., None], fr.mask


def render_rgb(vertices, triangles, colors: Optional[Tensor] = None, height=None, width=None,
               x0=0, y0=0, roi=None, uvs: Optional[Tensor] = None,
               uv_triangles: Optional[Tensor] = None, texture: Optional[Tensor] = None,
               sh_coeffs: Optional[Tensor] = None, orient: bool = True, backend="auto"):
    """Textured rendering (B, H, W, C).

    Either vertex ``colors`` (B|1, N, C) / (N, C), or a UV ``texture`` (B|1, C, Ht, Wt)
    sampled bilinearly (``grid_sample``, border padding) at per-pixel UVs interpolated from
    ``uvs`` (U, 2) / (B|1, U, 2) through ``uv_triangles`` (F, 3) (default ``triangles``).
    UV convention as in OBJ: u left to right, v bottom to top, both in [0, 1].
    With ``sh_coeffs`` (B, 9, 3) the colours are lit as albedo (per-pixel SH shading).
    """
    fr = rasterize(vertices, triangles, height, width, x0, y0, roi, backend)
    dt = fr.bary.dtype
    if (colors is None) == (texture is None):
        raise ValueError("render_rgb: give exactly one of colors or texture (with uvs)")
    if colors is not None:
        c = (colors[None] if colors.dim() == 2 else colors).to(dt)
        img = render_attributes(c, fr, triangles)
    else:
        if uvs is None:
            raise ValueError("render_rgb: texture needs uvs")
        ut = triangles if uv_triangles is None else uv_triangles
        if ut.shape[0] != triangles.shape[0]:
            raise ValueError("render_rgb: uv_triangles must have one row per triangle")
        u = (uvs[None] if uvs.dim() == 2 else uvs).to(dt)
        uv = render_attributes(u, fr, ut)  # (B, H, W, 2)
        grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)
        B = fr.face_index.shape[0]
        tex = texture.to(dt)
        if tex.shape[0] == 1 and B > 1:
            tex = tex.expand(B, -1, -1, -1)
        img = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border",
                            align_corners=False).permute(0, 2, 3, 1)
    if sh_coeffs is not None:
        n = _pixel_normals(vertices, triangles, fr, None, orient)
        sh = sh_coeffs.to(dt)
        img = shade(n, img, sh.expand(n.shape[0], 9, 3) if sh.shape[0] == 1 else sh)
    return img * fr.mask[..., None], fr.mask
