"""68-point (iBUG) landmark helpers: the mirror permutation, 300W ``.pts`` files, and the
3DDFA keypoint bases (the 68 landmark rows of 3DDFA's BFM) as a small morphable model."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["IBUG68_FLIP", "read_pts", "write_pts", "KeypointBases", "load_3ddfa_keypoint_bases"]


def _ibug68_flip() -> np.ndarray:
    perm = np.arange(68)
    pairs = [(i, 16 - i) for i in range(8)]                      # jaw 0..16 (8 is the chin)
    pairs += [(17 + i, 26 - i) for i in range(5)]                # eyebrows 17..21 <-> 26..22
    pairs += [(31, 35), (32, 34)]                                # nostrils (33 = nose tip)
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]   # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips (51, 57 centre)
    pairs += [(60, 64), (61, 63), (65, 67)]                      # inner lips (62, 66 centre)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


#: ``flipped[i] = mirror(points[IBUG68_FLIP[i]])``: the iBUG 68-point left/right permutation
#: (0-based). It is an involution; the nose bridge 27..30, nose tip 33, chin 8 and the lip
#: centres 51, 57, 62, 66 are fixed points.
IBUG68_FLIP = _ibug68_flip()


def read_pts(path) -> np.ndarray:
    """Read a 300W / iBUG ``.pts`` file -> (K, 2) float64 in the file's (1-based) pixel coordinates.

    Subtract 1 for 0-based pixels (what :mod:`pyface3d.data` uses everywhere).
    """
    with open(path, "r", encoding="utf-8") as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    try:
        n = None
        for ln in lines:
            if ln.lower().startswith("n_points"):
                n = int(ln.split(":")[1])
        start, end = lines.index("{"), lines.index("}")
    except (ValueError, IndexError) as e:
        raise ValueError(f"{path}: not a .pts file (needs 'n_points:' and a '{{ ... }}' block)") from e
    pts = np.array([[float(v) for v in ln.split()] for ln in lines[start + 1:end]], dtype=np.float64)
    if n is None or pts.shape != (n, 2):
        raise ValueError(f"{path}: header says n_points={n} but the block has shape {pts.shape}")
    return pts


def write_pts(path, pts) -> None:
    """Write (K, 2) points (1-based pixel coordinates, as the format expects) to a ``.pts`` file."""
    p = np.asarray(pts, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"`pts` must have shape (K, 2), got {p.shape}")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"version: 1\nn_points: {len(p)}\n{{\n")
        for x, y in p:
            f.write(f"{x:.6f} {y:.6f}\n")
        f.write("}\n")


@dataclass
class KeypointBases:
    """A 68-vertex morphable model: ``mean`` (204,), ``id_basis`` (204, I), ``exp_basis``
    (204, E), float64 numpy, rows interleaved x0, y0, z0, x1, ... (3DDFA units, y up)."""
    mean: np.ndarray
    id_basis: np.ndarray
    exp_basis: np.ndarray

    def reconstruct(self, params) -> np.ndarray:
        """params (P,) or (B, P) = [pose 12 | id I | exp E] -> (68, 3) or (B, 68, 3)
        through :func:`pyface3d.ops.morphable_reconstruct_params` (float64)."""
        from ..ops import morphable_reconstruct_params
        p = np.asarray(params, dtype=np.float64)
        single = p.ndim == 1
        t = torch.from_numpy(np.ascontiguousarray(p[None] if single else p))
        with torch.no_grad():
            v = morphable_reconstruct_params(t, torch.from_numpy(self.mean), torch.from_numpy(self.id_basis),
                                             torch.from_numpy(self.exp_basis)).numpy()
        return v[0] if single else v


def load_3ddfa_keypoint_bases(folder) -> KeypointBases:
    """Load ``u_base.txt`` (204), ``w_shp_base.txt`` (204, 40), ``w_exp_base.txt`` (204, 10) from
    ``folder`` (e.g. ``$PYFACE3D_SHARED/assets/teachers/3ddfa_v2_mb05``)."""
    arrs = []
    for name, ndim in (("u_base.txt", 1), ("w_shp_base.txt", 2), ("w_exp_base.txt", 2)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"keypoint bases: {path} not found")
        a = np.loadtxt(path, dtype=np.float64)
        if a.ndim != ndim or a.shape[0] != 204:
            raise ValueError(f"{path}: expected {ndim} dimension(s) with 204 rows, got shape {a.shape}")
        arrs.append(np.ascontiguousarray(a))
    return KeypointBases(*arrs)
