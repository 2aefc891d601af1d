"""Meshes for face profiling: the model mesh with its inner holes closed, and the 2D
"image mesh" of anchors around the face (rings outside the face silhouette and the image
border) that carries hair, ears, neck and background (see docs/augment.md).

Frames: image pixels, x right, y down, z toward the camera (larger is nearer), pixel
centres at integers (the convention of :mod:`pyface3d.ops.raster`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import List, Tuple

import cv2
import numpy as np
import torch
from scipy.spatial import Delaunay, cKDTree

from .. import ops

__all__ = ["boundary_loops", "ClosedMesh", "AnchorMesh", "build_anchor_mesh", "resample_closed"]


def boundary_loops(triangles: np.ndarray) -> List[np.ndarray]:
    """Boundary loops of a triangle mesh, longest first.

    A boundary edge belongs to exactly one triangle; loops follow the edges in the direction
    they have in their triangle. Vertices where several loops touch are handled by consuming
    edges (each boundary edge is used once).

    Args:
        triangles: (F, 3) vertex ids.

    Returns:
        list of int64 arrays of vertex ids (each loop without repeating its first vertex).
    """
    tri = np.asarray(triangles, dtype=np.int64)
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ValueError(f"boundary_loops: `triangles` must have shape (F, 3), got {tri.shape}")
    if tri.shape[0] == 0:
        return []
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    _, inv, cnt = np.unique(np.sort(e, 1), axis=0, return_inverse=True, return_counts=True)
    b = e[cnt[inv.ravel()] == 1]
    nxt = defaultdict(list)
    for a, c in b.tolist():
        nxt[a].append(c)
    for a in nxt:
        nxt[a].sort(reverse=True)  # deterministic order of consumption
    loops = []
    for start in sorted(nxt):
        while nxt[start]:
            loop, a = [start], nxt[start].pop()
            while a != start and nxt[a]:
                loop.append(a)
                a = nxt[a].pop()
            loops.append(np.asarray(loop, dtype=np.int64))
    loops.sort(key=lambda l: (-len(l), int(l.min())))
    return loops


@dataclass
class ClosedMesh:
    """A model mesh whose inner boundary loops (eyes, mouth, nostrils: every loop but the
    longest, which is the outer border) are closed by fans to one extra vertex per loop,
    placed at the mean of the loop's vertices (a linear function of the vertices, so the
    caps follow any pose and rotation exactly).

    Attributes:
        triangles: (F + sum(len(loop)), 3) int32, the model's triangles first.
        caps: the closed loops (vertex ids); cap ``j`` is vertex ``N + j``.
        outer: the outer boundary loop (vertex ids), or an empty array for a closed mesh.
        num_vertices: N (model vertices).
    """
    triangles: np.ndarray
    caps: List[np.ndarray]
    outer: np.ndarray
    num_vertices: int

    @classmethod
    def from_triangles(cls, triangles: np.ndarray, num_vertices: int) -> "ClosedMesh":
        tri = np.asarray(triangles, dtype=np.int64)
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.shape[0] == 0:
            raise ValueError(f"the morphable model needs a triangle mesh for face profiling; its "
                             f"`triangles` have shape {tri.shape}")
        loops = boundary_loops(tri)
        outer = loops[0] if loops else np.zeros(0, np.int64)
        caps = loops[1:]
        fans = []
        for j, loop in enumerate(caps):
            c = num_vertices + j
            nxt = np.roll(loop, -1)
            # boundary edge a -> b lies in a triangle with that direction; the cap uses b -> a
            fans.append(np.stack([nxt, loop, np.full_like(loop, c)], 1))
        all_tri = np.concatenate([tri] + fans) if fans else tri
        return cls(all_tri.astype(np.int32), caps, outer, int(num_vertices))

    @property
    def total_vertices(self) -> int:
        return self.num_vertices + len(self.caps)

    def extend(self, vertices: np.ndarray) -> np.ndarray:
        """(N, 3) vertices -> (N + len(caps), 3) with the cap centres appended."""
        v = np.asarray(vertices)
        if v.ndim != 2 or v.shape[0] != self.num_vertices:
            raise ValueError(f"ClosedMesh.extend: expected ({self.num_vertices}, C) vertices, got {v.shape}")
        if not self.caps:
            return v
        return np.concatenate([v, np.stack([v[l].mean(0) for l in self.caps])])


def resample_closed(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points spaced ``spacing`` apart (by arc length) along a closed polyline (K, 2)."""
    p = np.asarray(points, np.float64)
    if len(p) < 3:
        return p.copy()
    seg = np.linalg.norm(np.roll(p, -1, 0) - p, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    length = s[-1]
    n = max(int(round(length / max(spacing, 1e-9))), 3)
    t = np.arange(n) * (length / n)
    closed = np.concatenate([p, p[:1]])
    return np.stack([np.interp(t, s, closed[:, 0]), np.interp(t, s, closed[:, 1])], 1)


def _largest_contour(mask: np.ndarray) -> np.ndarray:
    cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not cs:
        return np.zeros((0, 2), np.float64)
    c = max(cs, key=lambda c: (cv2.contourArea(c), len(c)))
    return c[:, 0, :].astype(np.float64)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class AnchorMesh:
    """Anchor points around the face in the source view and their triangles.

    Attributes:
        points: (A, 3) image-space anchors (x, y, depth).
        weight: (A,) how much each anchor follows the head's rotation (1: rigidly, the
            face silhouette and hair next to it; 0: static, the image border).
        triangles: (T, 3) int32 ids into ``points`` (Delaunay, the face polygon removed).
        kind: (A,) int8: 0 silhouette loop, k >= 1 ring k, -1 image border.
    """
    points: np.ndarray
    weight: np.ndarray
    triangles: np.ndarray
    kind: np.ndarray


def build_anchor_mesh(face_mask: np.ndarray, face_depth: np.ndarray, scale: float,
                      background_depth: float, rings: Tuple[float, ...], hold: float,
                      release: float, spacing: float, border_spacing: float,
                      depth_offset: float) -> AnchorMesh:
    """Anchors around the face silhouette of a source-view rendering (300W-LP's "3D image
    meshing", Zhu et al. 2016, simplified).

    * Silhouette loop: the outer contour of ``face_mask`` resampled every
      ``spacing * scale`` pixels, at the Z-buffer depth there minus ``depth_offset * scale``
      (just behind the face, so the face wins the depth test along the seam); weight 1.
    * Rings: the contours of the mask dilated by ``r * scale`` for each ``r`` in ``rings``
      (spacing growing with the ring's gap), points closer than half a spacing to the image
      border dropped. Each ring point takes the depth ``z_c`` of its nearest silhouette point
      and blends it toward ``background_depth`` with its weight
      ``w = 1 - smoothstep((r - hold) / (release - hold))``: ``z = zb + w (z_c - zb)``.
    * Image border: the rectangle half a pixel outside the image (every pixel centre is
      inside the triangulation), every ``border_spacing`` pixels, depth ``background_depth``,
      weight 0.

    All points are triangulated together (Delaunay on x, y); triangles whose centroid falls
    on a pixel covered by the face are removed (the face mesh fills that hole), except those
    needed to cover pixels that neither the face nor the other triangles cover (concave
    pockets of the silhouette), so the source view has no crack.

    Args:
        face_mask: (H, W) bool coverage of the face mesh. face_depth: (H, W) its depth.
        scale: face size in pixels (the landmark box's longer side).
        background_depth: image-space depth the far anchors tend to.

    Returns:
        :class:`AnchorMesh`.
    """
    H, W = face_mask.shape
    if not face_mask.any():
        raise ValueError("the fitted face does not cover any pixel of the image (landmarks "
                         "outside the image?)")
    loop_px = _largest_contour(face_mask)
    step = max(spacing * scale, 2.0)
    loop = resample_closed(loop_px, step)
    # the resampled point may sit between contour pixels; take the depth of the nearest
    # covered pixel of the contour
    tree_px = cKDTree(loop_px)
    _, nearest = tree_px.query(loop)
    npx = loop_px[nearest].astype(np.int64)
    loop_z = face_depth[npx[:, 1], npx[:, 0]] - depth_offset * scale
    pts = [np.column_stack([loop, loop_z])]
    weights = [np.ones(len(loop))]
    kinds = [np.zeros(len(loop), np.int8)]

    dist = cv2.distanceTransform((~face_mask).astype(np.uint8), cv2.DIST_L2, 5)
    loop_tree = cKDTree(loop)
    prev = 0.0
    for k, r in enumerate(rings, start=1):
        ring_mask = dist <= r * scale
        c = _largest_contour(ring_mask)
        gap = (r - prev) * scale
        prev = r
        sp = max(step, 0.75 * gap)
        ring = resample_closed(c, sp)
        margin = 0.5 * sp
        keep = ((ring[:, 0] >= margin) & (ring[:, 0] <= W - 1 - margin) &
                (ring[:, 1] >= margin) & (ring[:, 1] <= H - 1 - margin))
        ring = ring[keep]
        if len(ring) == 0:
            continue
        w = 1.0 - _smoothstep((r - hold) / max(release - hold, 1e-9))
        _, nn = loop_tree.query(ring)
        z = background_depth + w * (loop_z[nn] - background_depth)
        pts.append(np.column_stack([ring, z]))
        weights.append(np.full(len(ring), w))
        kinds.append(np.full(len(ring), k, np.int8))

    # image border, half a pixel outside the pixel centres
    xa, ya, xb, yb = -0.5, -0.5, W - 0.5, H - 0.5
    nx = max(int(np.ceil((xb - xa) / border_spacing)), 1)
    ny = max(int(np.ceil((yb - ya) / border_spacing)), 1)
    xs = np.linspace(xa, xb, nx + 1)
    ys = np.linspace(ya, yb, ny + 1)
    border = np.concatenate([np.column_stack([xs, np.full_like(xs, ya)]),
                             np.column_stack([xs, np.full_like(xs, yb)]),
                             np.column_stack([np.full(ny - 1, xa), ys[1:-1]]),
                             np.column_stack([np.full(ny - 1, xb), ys[1:-1]])])
    pts.append(np.column_stack([border, np.full(len(border), background_depth)]))
    weights.append(np.zeros(len(border)))
    kinds.append(np.full(len(border), -1, np.int8))

    points = np.concatenate(pts)
    weight = np.concatenate(weights)
    kind = np.concatenate(kinds)
    # anchors closer than 0.1 px to an earlier one would make slivers: drop the later ones
    _, first = np.unique(np.round(points[:, :2] * 10), axis=0, return_index=True)
    keep = np.sort(first)
    points, weight, kind = points[keep], weight[keep], kind[keep]
    tri = Delaunay(points[:, :2]).simplices.astype(np.int64)
    # drop the triangles over the face (centroid on a covered pixel) and degenerate ones;
    # triangles over concave pockets of the silhouette stay and close the seam there
    cen = points[tri, :2].mean(1)
    cx, cy = np.round(cen[:, 0]).astype(np.int64), np.round(cen[:, 1]).astype(np.int64)
    in_img = (cx >= 0) & (cx < W) & (cy >= 0) & (cy < H)
    inside = np.zeros(len(tri), bool)
    inside[in_img] = face_mask[cy[in_img], cx[in_img]]
    a = points[tri[:, 1], :2] - points[tri[:, 0], :2]
    b = points[tri[:, 2], :2] - points[tri[:, 0], :2]
    area = 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
    good = area > 1e-6
    keep_t, inner_t = tri[~inside & good], tri[inside & good]
    # pixels neither the face nor the kept triangles cover (at concave pockets of the
    # silhouette): give them back the removed triangles that cover them
    if len(inner_t):
        pts_t = torch.from_numpy(points)[None]
        fi, _, _ = ops.rasterize(pts_t, torch.from_numpy(keep_t.astype(np.int32)), H, W)
        gap = ~face_mask & (fi[0] < 0).numpy()
        if gap.any():
            fi2, _, _ = ops.rasterize(pts_t, torch.from_numpy(inner_t.astype(np.int32)), H, W)
            ids = np.unique(fi2[0].numpy()[gap])
            keep_t = np.concatenate([keep_t, inner_t[ids[ids >= 0]]])
    tri = keep_t
    return AnchorMesh(points, weight, tri.astype(np.int32), kind)
