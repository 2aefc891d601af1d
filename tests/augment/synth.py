"""A small synthetic face-like morphable model with a mesh (no shared data needed) and
textured scenes rendered from it, for the face profiling tests."""
from __future__ import annotations

import math

import numpy as np
import torch

from pyface3d import ops
from pyface3d.augment.mesh import ClosedMesh
from pyface3d.data import crop_to_image
from pyface3d.morphable import MorphableModel, pose_from_euler


def _landmark_layout() -> np.ndarray:
    """68 points in iBUG order on a unit face (x right, y up)."""
    pts = []
    for a in np.linspace(math.radians(195), math.radians(345), 17):       # jaw 0..16
        pts.append((0.85 * math.cos(a), 0.05 + 1.0 * math.sin(a)))
    for s in (-1, 1):                                                    # brows 17..26
        xs = np.linspace(-0.7, -0.2, 5) if s < 0 else np.linspace(0.2, 0.7, 5)
        for x in xs:
            pts.append((x, 0.5 + 0.05 * math.cos((abs(x) - 0.45) * 6)))
    for y in np.linspace(0.3, -0.05, 4):                                 # nose bridge 27..30
        pts.append((0.0, y))
    for x in np.linspace(-0.16, 0.16, 5):                                # nostrils 31..35
        pts.append((x, -0.15 + 0.03 * abs(x) / 0.16))
    for cx in (-0.38, 0.38):                                             # eyes 36..47
        for a in np.radians([180, 130, 50, 0, 310, 230]):
            pts.append((cx + 0.15 * math.cos(a), 0.3 + 0.09 * math.sin(a)))
    for a in np.radians(np.linspace(180, -150, 12)):                     # outer lips 48..59
        pts.append((0.32 * math.cos(a), -0.45 + 0.14 * math.sin(a)))
    for a in np.radians([180, 135, 90, 45, 0, -45, -90, -135]):          # inner lips 60..67
        pts.append((0.2 * math.cos(a), -0.45 + 0.05 * math.sin(a)))
    return np.asarray(pts)


def make_model(n: int = 37) -> MorphableModel:
    """A head-like open shell (ellipse in x, y; depth bulge + nose) with two eye holes,
    6 identity and 3 expression components, symmetric in x."""
    xs = np.linspace(-1.0, 1.0, n)
    ys = np.linspace(-1.3, 1.3, int(n * 1.3) | 1)
    X, Y = np.meshgrid(xs, ys)
    r2 = X ** 2 + (Y / 1.3) ** 2
    inside = r2 <= 1.0
    idx = -np.ones(X.shape, np.int64)
    idx[inside] = np.arange(inside.sum())
    Z = 0.9 * np.sqrt(np.clip(1.0 - r2, 0, None)) + 0.3 * np.exp(-(X ** 2 + (Y + 0.05) ** 2) / 0.02)
    verts = np.stack([X[inside], Y[inside], Z[inside]], 1)
    tris = []
    for i in range(X.shape[0] - 1):
        for j in range(X.shape[1] - 1):
            a, b, c, d = idx[i, j], idx[i, j + 1], idx[i + 1, j + 1], idx[i + 1, j]
            if min(a, b, c, d) < 0:
                continue
            for t in ((a, b, c), (a, c, d)):
                cen = verts[list(t), :2].mean(0)
                if ((abs(cen[0]) - 0.38) / 0.13) ** 2 + ((cen[1] - 0.3) / 0.06) ** 2 < 1:
                    continue  # eye holes
                tris.append(t)
    tris = np.asarray(tris, np.int64)
    used = np.unique(tris)
    lay = _landmark_layout()
    d2 = ((verts[None, used, :2] - lay[:, None]) ** 2).sum(-1)
    lm = used[np.argmin(d2, 1)]
    assert len(np.unique(lm)) == 68, "landmark layout collapsed onto shared vertices"
    N = len(verts)
    # smooth symmetric deformations: identity (width, height, depth, nose, cheeks, chin)
    x, y, z = verts.T
    fields = [np.stack([x, 0 * y, 0 * z], 1), np.stack([0 * x, y, 0 * z], 1),
              np.stack([0 * x, 0 * y, z], 1),
              np.stack([0 * x, 0 * y, np.exp(-(x ** 2 + y ** 2) / 0.05)], 1),
              np.stack([0 * x, 0 * y, x ** 2 * (1 - y ** 2)], 1), np.stack([0 * x, np.minimum(y, 0) ** 2, 0 * z], 1)]
    idb = np.stack([f.reshape(-1) for f in fields], 1) * 0.05
    mouth = np.exp(-(x ** 2 / 0.2 + (y + 0.45) ** 2 / 0.02))
    efields = [np.stack([0 * x, -mouth * (y < -0.45), 0 * z], 1), np.stack([mouth * x, 0 * y, 0 * z], 1),
               np.stack([0 * x, 0 * y, mouth], 1)]
    exb = np.stack([f.reshape(-1) for f in efields], 1) * 0.04
    P = 12 + idb.shape[1] + exb.shape[1]
    pmean = np.zeros(P)
    pmean[[0, 5, 10]] = 40.0
    pmean[[3, 7]] = 60.0
    pstd = np.ones(P)
    pstd[:12] = [5, 5, 5, 4, 5, 5, 5, 4, 5, 5, 5, 1]
    return MorphableModel(mean=verts.reshape(-1), id_basis=idb, exp_basis=exb, triangles=tris,
                          landmarks68=lm, param_mean=pmean, param_std=pstd, name="synthetic-head")


def make_params(model, yaw=10.0, pitch=5.0, roll=-4.0, scale=38.0, shift=(0.0, 0.0), coeff=0.5,
                seed=1) -> np.ndarray:
    """Crop-frame parameters (120 crop, y up) of a face centred in the crop."""
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor([61.0 + shift[0], 60.0 + shift[1], 0.0], dtype=torch.float64)
    pose = pose_from_euler(torch.tensor([yaw], dtype=torch.float64), pitch, roll, scale, t,
                           degrees=True)[0]
    c = coeff * torch.randn(model.I + model.E, generator=g, dtype=torch.float64)
    return torch.cat([pose.reshape(12), c]).numpy()


def vertex_colors(model, mesh: ClosedMesh) -> np.ndarray:
    """Smooth per-vertex BGR colours (a function of the mean shape's position), caps
    included (mean of their loop, as ClosedMesh.extend does for positions)."""
    v = model.mean.view(-1, 3).double().numpy()
    x, y, z = v.T
    col = np.stack([120 + 60 * np.sin(9 * x + 1), 110 + 70 * np.cos(7 * y), 140 + 50 * np.sin(8 * x * y + 3 * z)], 1)
    return mesh.extend(col)


def background(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = np.stack([60 + 40 * np.sin(xx / 9.0) + 20 * yy / h, 90 + 50 * np.cos(yy / 13.0),
                   70 + 30 * np.sin((xx + yy) / 17.0) + 40 * xx / w], -1)
    return np.clip(bg, 20, 235)


def render_scene(model, params, roi, h=160, w=160, colors=None, bg=None, mesh=None):
    """Image (h, w, 3) uint8 of the model (or of ``mesh``, a ClosedMesh of it) at crop-frame
    ``params`` for ``roi`` with smooth per-vertex colours over a smooth background; and the
    face mask, depth and the image-space vertices."""
    if mesh is None:
        mesh = ClosedMesh.from_triangles(model.triangles.numpy(), model.N)
    m64 = model.to("cpu", torch.float64)
    v = m64.reconstruct(torch.as_tensor(params, dtype=torch.float64)[None])[0].numpy()
    vi = mesh.extend(crop_to_image(v[None], np.asarray(roi, np.float64)[None])[0])
    cols = vertex_colors(model, mesh) if colors is None else colors
    tri = torch.from_numpy(mesh.triangles)
    fi, bary, depth = ops.rasterize(torch.from_numpy(vi)[None], tri, h, w)
    img = ops.interpolate(torch.from_numpy(cols)[None], fi, bary, tri)[0].numpy()
    mask = (fi[0] >= 0).numpy()
    base = background(h, w) if bg is None else bg
    out = np.where(mask[..., None], img, base)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), mask, depth[0].numpy(), vi
