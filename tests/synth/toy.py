"""A small face-like morphable model with open eyes and mouth (no ../shared needed).

A height field over the front of the demo head (``pyface3d.demo``), triangulated on a grid,
with the triangles inside the two eye contours and the inner lip contour removed (holes like
ICT-FaceKit's face mesh), 68 landmarks on the nearest remaining vertices, and smooth random
identity / expression bases.
"""
import numpy as np
import torch

from pyface3d.demo import _AZ, _bumps, _front_z, head_landmarks68
from pyface3d.morphable import MorphableModel
from pyface3d.synth.regions import _inside


def toy_face(nx: int = 56, ny: int = 64, I: int = 6, E: int = 3, seed: int = 0,
             holes: bool = True) -> MorphableModel:
    xs = np.linspace(-0.78, 0.78, nx)
    ys = np.linspace(-1.0, 0.75, ny)
    X, Y = np.meshgrid(xs, ys)
    Z = _front_z(X, Y)
    Z = Z + np.clip(Z / _AZ, 0, 1) ** 0.5 * _bumps(X, Y)
    v = np.stack([X, Y, Z], -1).reshape(-1, 3)
    idx = np.arange(nx * ny).reshape(ny, nx)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    tri = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                          np.stack([a, c, d], -1).reshape(-1, 3)])
    lm_pts = head_landmarks68().astype(np.float64)
    if holes:
        cen = v[tri].mean(1)[:, :2]
        cut = np.zeros(len(tri), bool)
        for lo, hi in ((36, 42), (42, 48), (60, 68)):
            cut |= _inside(cen, lm_pts[lo:hi, :2])
        tri = tri[~cut]
    used = np.unique(tri)
    d2 = ((lm_pts[:, None, :] - v[None, used]) ** 2).sum(-1)
    lm = used[d2.argmin(1)]
    scale = 50.0
    v = torch.from_numpy(v * scale)
    N = v.shape[0]
    g = torch.Generator().manual_seed(seed)
    x, y, z = (v / scale).unbind(1)
    feats = torch.stack([x, y, z, x * y, y * z, x * z, x * x, y * y, z * z], 1)

    def basis(k, amp):
        cols = []
        for _ in range(k):
            w = torch.randn(feats.shape[1], 3, generator=g, dtype=torch.float64)
            cols.append((feats @ w).reshape(-1))
        bb = torch.stack(cols, 1)
        return amp * bb / bb.norm(dim=0, keepdim=True) * (3 * N) ** 0.5

    P = 12 + I + E
    return MorphableModel(mean=v.reshape(-1).float(), id_basis=basis(I, 1.5).float(),
                          exp_basis=basis(E, 0.8).float(), triangles=torch.from_numpy(tri).int(),
                          landmarks68=torch.from_numpy(lm).long(), param_mean=torch.zeros(P),
                          param_std=torch.ones(P), name="toy-face")
