"""Triangle rasterization and attribute interpolation (depth maps, PNCC).

Conventions (3DDFA-compatible image space):

* ``vertices`` (B, N, 3) are image pixel coordinates: x right, y down, z toward
  the camera, so a LARGER z is NEARER. Pixel centres are at integer coordinates.
* The output window of size (height, width) starts at image pixel (x0, y0):
  output pixel (i, j) samples the image point (x0 + j, y0 + i), so a face can be
  rendered into a region of a large frame at the cost of the region.
* Orthographic projection, screen-space barycentrics. A centre is covered when
  it is inside the triangle or on an edge under the top-left fill rule (a shared
  edge is covered exactly once). Both windings are drawn; zero-area triangles
  and triangles with a non-finite vertex cover nothing.
* Z-buffer: the largest depth (rounded to the output dtype) wins; exact ties go
  to the smaller face index. CPU and CUDA results are identical.

Gradients: :func:`interpolate` is differentiable with respect to ``attributes``
only; ``face_index`` and ``bary`` (and therefore the vertex positions through
:func:`rasterize`) get no gradient. On CUDA the backward scatter uses float
atomics, so its last bits may vary from run to run; on CPU it is deterministic.
"""
from typing import Tuple

import torch
from torch import Tensor, nn

from . import _lib
from . import _reference_raster as _ref

__all__ = ["rasterize", "interpolate", "render_depth", "render_pncc", "ncc_code",
           "Rasterizer", "PNCCRenderer"]


def rasterize(vertices: Tensor, triangles: Tensor, height: int, width: int, x0: int = 0,
              y0: int = 0) -> Tuple[Tensor, Tensor, Tensor]:
    """Rasterize triangle meshes into a (height, width) window of the image.

    Args:
        vertices: (B, N, 3) float32/float64 image-space vertices (z: larger is nearer).
        triangles: (F, 3) int32 (or int64) vertex indices in [0, N).
        height, width: window size (>= 1).
        x0, y0: image coordinates of the window's top-left pixel.

    Returns:
        face_index (B, H, W) int32 (-1 on background), bary (B, H, W, 3) and
        depth (B, H, W) in the dtype of ``vertices`` (0 on background).
    """
    if _lib.HAS_C:
        return tuple(torch.ops.pyface3d.rasterize(vertices, triangles, int(height), int(width),
                                                  int(x0), int(y0)))
    _lib.warn_fallback("raster.rasterize")
    return _ref.rasterize(vertices, triangles, height, width, x0, y0)


def interpolate(attributes: Tensor, face_index: Tensor, bary: Tensor, triangles: Tensor) -> Tensor:
    """Interpolate per-vertex attributes over the rasterized pixels.

    Args:
        attributes: (B, N, C) or (1, N, C) (shared by the batch), float32/float64.
        face_index: (B, H, W) int32 from :func:`rasterize` (-1 background).
        bary: (B, H, W, 3) same dtype as ``attributes``.
        triangles: (F, 3) int32/int64.

    Returns:
        (B, H, W, C): ``sum_k bary[..., k] * attributes[tri[f, k]]``, 0 on background.
        Differentiable with respect to ``attributes`` only.
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.interpolate(attributes, face_index, bary, triangles)
    _lib.warn_fallback("raster.interpolate")
    return _ref.interpolate(attributes, face_index, bary, triangles)


def render_depth(vertices: Tensor, triangles: Tensor, height: int, width: int, x0: int = 0,
                 y0: int = 0) -> Tensor:
    """Depth map (B, H, W) of (B, N, 3) vertices, 0 on background (one rasterize call)."""
    return rasterize(vertices, triangles, height, width, x0, y0)[2]


def ncc_code(mean_vertices: Tensor) -> Tensor:
    """3DDFA normalised coordinate code: (N, 3) -> (N, 3), each axis mapped to
    [0, 1] by its min and max over the vertices (a constant axis maps to 0)."""
    return _ref.ncc_code(mean_vertices)


def render_pncc(vertices: Tensor, triangles: Tensor, ncc: Tensor, height: int, width: int,
                x0: int = 0, y0: int = 0) -> Tensor:
    """Projected NCC image (B, H, W, 3) (channels x, y, z of the NCC; 3DDFA_V2
    writes them reversed for OpenCV), 0 on background."""
    face, bary, _ = rasterize(vertices, triangles, height, width, x0, y0)
    return interpolate(ncc.to(vertices.dtype)[None], face, bary, triangles)


class Rasterizer(nn.Module):
    """Module form of :func:`rasterize` for a fixed window."""

    def __init__(self, height: int, width: int, x0: int = 0, y0: int = 0):
        super().__init__()
        self.height, self.width, self.x0, self.y0 = int(height), int(width), int(x0), int(y0)

    def forward(self, vertices: Tensor, triangles: Tensor):
        return rasterize(vertices, triangles, self.height, self.width, self.x0, self.y0)

    def extra_repr(self) -> str:
        return f"height={self.height}, width={self.width}, x0={self.x0}, y0={self.y0}"


class PNCCRenderer(nn.Module):
    """Module form of :func:`render_pncc`: holds the triangles and the NCC code
    of a morphable model's mean shape (N, 3)."""

    def __init__(self, triangles: Tensor, mean_vertices: Tensor, height: int = 120,
                 width: int = 120):
        super().__init__()
        self.register_buffer("triangles", triangles.to(torch.int32).contiguous())
        self.register_buffer("ncc", ncc_code(mean_vertices))
        self.height, self.width = int(height), int(width)

    def forward(self, vertices: Tensor, x0: int = 0, y0: int = 0) -> Tensor:
        return render_pncc(vertices, self.triangles, self.ncc, self.height, self.width, x0, y0)


if _lib.HAS_C:

    @torch.library.register_fake("pyface3d::rasterize")
    def _rasterize_fake(vertices, triangles, height, width, x0=0, y0=0):
        B = vertices.shape[0]
        return (vertices.new_empty((B, height, width), dtype=torch.int32),
                vertices.new_empty((B, height, width, 3)),
                vertices.new_empty((B, height, width)))

    @torch.library.register_fake("pyface3d::interpolate")
    def _interpolate_fake(attributes, face_index, bary, triangles):
        B, H, W = face_index.shape
        return attributes.new_empty((B, H, W, attributes.shape[2]))

    @torch.library.register_fake("pyface3d::_interpolate_backward")
    def _interpolate_backward_fake(grad, face_index, bary, triangles, num_vertices, broadcast):
        B = face_index.shape[0]
        return grad.new_empty((1 if broadcast else B, num_vertices, grad.shape[3]))

    def _interpolate_setup(ctx, inputs, output):
        attributes, face_index, bary, triangles = inputs
        ctx.save_for_backward(face_index, bary, triangles)
        ctx.num_vertices = attributes.shape[1]
        ctx.broadcast = attributes.shape[0] == 1

    def _interpolate_bwd(ctx, grad):
        face_index, bary, triangles = ctx.saved_tensors
        g = None
        if ctx.needs_input_grad[0]:
            g = torch.ops.pyface3d._interpolate_backward(grad, face_index, bary, triangles,
                                                         ctx.num_vertices, ctx.broadcast)
        return g, None, None, None

    torch.library.register_autograd("pyface3d::interpolate", _interpolate_bwd,
                                    setup_context=_interpolate_setup)
