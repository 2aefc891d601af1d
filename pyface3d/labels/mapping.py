"""MediaPipe FaceMesh (468 vertices) -> iBUG 68 landmark mapping.

Each iBUG point is a sparse convex combination of a few FaceMesh vertices
(``p_j = sum_i w_ji m_{v_ji}``, ``w >= 0``, ``sum w = 1``; hence equivariant to any
similarity of the image). :func:`fit_mapping` fits it on paired faces: every face is
similarity-aligned (Procrustes of its FaceMesh points onto their mean shape, two rounds) so
the ``k`` candidate vertices of a point are those with the smallest mean distance to it over
all faces, and the weights are the non-negative least squares over all faces (in the aligned
frame, so every face counts alike) with the sum-to-one row weighted heavily, then
renormalised. The shipped map (``mp68_map.json``, :func:`load_map`) was fitted on the 300W
training faces only; docs/labels.md says how.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

__all__ = ["Mp68Map", "fit_mapping", "load_map", "DEFAULT_MAP", "GROUPS", "similarity_align",
           "group_errors"]

DEFAULT_MAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mp68_map.json")

#: iBUG 68 point groups (0-based).
GROUPS: Dict[str, np.ndarray] = {
    "jaw": np.arange(0, 17), "brows": np.arange(17, 27), "nose": np.arange(27, 36),
    "eyes": np.arange(36, 48), "mouth": np.arange(48, 68), "inner": np.arange(17, 68),
    "all": np.arange(68)}


@dataclass
class Mp68Map:
    """``vertices`` (68, k) FaceMesh vertex ids, ``weights`` (68, k) convex weights."""
    vertices: np.ndarray
    weights: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, np.int64)
        self.weights = np.asarray(self.weights, np.float64)
        if self.vertices.ndim != 2 or self.vertices.shape[0] != 68 \
                or self.weights.shape != self.vertices.shape:
            raise ValueError(f"Mp68Map: `vertices` and `weights` must both be (68, k), got "
                             f"{self.vertices.shape} and {self.weights.shape}")
        if (self.weights < 0).any() or not np.allclose(self.weights.sum(1), 1.0, atol=1e-6):
            raise ValueError("Mp68Map: `weights` must be >= 0 and sum to 1 per point")
        if self.vertices.min() < 0:
            raise ValueError("Mp68Map: `vertices` must be >= 0")

    def __call__(self, mesh: np.ndarray) -> np.ndarray:
        """(..., V, D) FaceMesh points (V >= 468) -> (..., 68, D)."""
        mesh = np.asarray(mesh, np.float64)
        if mesh.ndim < 2 or mesh.shape[-2] <= self.vertices.max():
            raise ValueError(f"argument `mesh`: expected (..., V, D) with V >= "
                             f"{self.vertices.max() + 1}, got {mesh.shape}")
        return np.einsum("...jkd,jk->...jd", mesh[..., self.vertices, :], self.weights)

    def to_json(self, path: str) -> None:
        d = {"vertices": self.vertices.tolist(),
             "weights": [[round(float(w), 6) for w in row] for row in self.weights],
             "info": self.info}
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(d, f, indent=1)
        os.replace(tmp, path)


def load_map(path: Optional[str] = None) -> Mp68Map:
    """The mapping stored at ``path`` (default: the shipped ``mp68_map.json``)."""
    path = path or DEFAULT_MAP
    if not os.path.isfile(path):
        raise FileNotFoundError(f"argument `path`: no MediaPipe->68 map at {path} (make one "
                                "with `pyface3d labels fit-map`)")
    with open(path, "r", encoding="utf-8") as f:
        d = json.load(f)
    w = np.asarray(d["weights"], np.float64)
    return Mp68Map(d["vertices"], w / w.sum(1, keepdims=True), d.get("info", {}))


def similarity_align(src: np.ndarray, dst: np.ndarray):
    """Least-squares 2D similarity ``x -> s R x + t`` taking ``src`` (N, 2) onto ``dst``.
    Returns (sR (2, 2), t (2,))."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    c = b.T @ a
    u, s, vt = np.linalg.svd(c)
    d = np.sign(np.linalg.det(u @ vt))
    dm = np.diag([1.0, d])
    r = u @ dm @ vt
    scale = (s * np.diag(dm)).sum() / max((a ** 2).sum(), 1e-12)
    return scale * r, md - scale * r @ ms


def _align_all(mesh: np.ndarray, pts: np.ndarray, rounds: int = 2):
    """Procrustes-align every face's mesh onto the mean mesh; the same map moves ``pts``."""
    ref = mesh[0] - mesh[0].mean(0)
    ref = ref / np.sqrt((ref ** 2).sum(1).mean())
    for _ in range(rounds + 1):
        am, ap = np.empty_like(mesh), np.empty_like(pts)
        for f in range(len(mesh)):
            a, t = similarity_align(mesh[f], ref)
            am[f] = mesh[f] @ a.T + t
            ap[f] = pts[f] @ a.T + t
        ref = am.mean(0)
        ref = (ref - ref.mean(0)) / np.sqrt(((ref - ref.mean(0)) ** 2).sum(1).mean())
    return am, ap


def _nnls_convex(a: np.ndarray, b: np.ndarray, lam: float = 1e4) -> np.ndarray:
    from scipy.optimize import nnls
    scale = np.sqrt(lam) * max(np.abs(a).max(), 1.0)
    aa = np.vstack([a, np.full((1, a.shape[1]), scale)])
    bb = np.concatenate([b, [scale]])
    w, _ = nnls(aa, bb, maxiter=50 * a.shape[1])
    s = w.sum()
    if s <= 0:
        raise RuntimeError("NNLS gave all-zero weights")
    return w / s


def fit_mapping(mesh: np.ndarray, pts68: np.ndarray, k=8, info: Optional[dict] = None
                ) -> Mp68Map:
    """Fit the map on paired faces.

    Args:
        mesh: (F, V, 2|3) FaceMesh points (only x, y are used), image pixels.
        pts68: (F, 68, 2) target iBUG points of the same faces, same pixels.
        k: candidate vertices per point: an int, or a (68,) sequence (e.g. more for the jaw).
        info: stored with the map (how it was made).
    """
    mesh = np.asarray(mesh, np.float64)[..., :2]
    pts68 = np.asarray(pts68, np.float64)[..., :2]
    if mesh.ndim != 3 or pts68.ndim != 3 or pts68.shape[1:] != (68, 2) \
            or len(mesh) != len(pts68) or len(mesh) < 1:
        raise ValueError(f"arguments `mesh` (F, V, 2|3) and `pts68` (F, 68, 2) must pair the "
                         f"same F >= 1 faces, got {mesh.shape} and {pts68.shape}")
    if not (np.isfinite(mesh).all() and np.isfinite(pts68).all()):
        raise ValueError("arguments `mesh` and `pts68` must be finite (pass found faces only)")
    ks = np.broadcast_to(np.asarray(k, np.int64), (68,))
    if (ks < 1).any() or (ks > mesh.shape[1]).any():
        raise ValueError(f"argument `k` must be in [1, {mesh.shape[1]}], got {k}")
    am, ap = _align_all(mesh, pts68)
    kmax = int(ks.max())
    verts = np.zeros((68, kmax), np.int64)
    weights = np.zeros((68, kmax))
    for j in range(68):
        d = np.sqrt(((am - ap[:, j:j + 1]) ** 2).sum(-1)).mean(0)      # (V,)
        cand = np.argsort(d, kind="stable")[: ks[j]]
        a = am[:, cand].transpose(0, 2, 1).reshape(-1, len(cand))       # (2F, k)
        w = _nnls_convex(a, ap[:, j].reshape(-1))
        order = np.argsort(-w, kind="stable")
        verts[j, : len(cand)] = cand[order]
        weights[j, : len(cand)] = w[order]
        if len(cand) < kmax:    # pad with zero-weight copies of the first vertex
            verts[j, len(cand):] = cand[order[0]]
    return Mp68Map(verts, weights, dict(info or {}, k=np.asarray(k).tolist(), faces=len(mesh)))


def group_errors(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray) -> Dict[str, float]:
    """Mean point error / ``norm`` (F,) per :data:`GROUPS` group, in percent."""
    e = np.sqrt(((np.asarray(pred)[..., :2] - np.asarray(gt)[..., :2]) ** 2).sum(-1))
    e = e / np.asarray(norm, np.float64)[:, None]
    return {g: float(100 * e[:, ix].mean()) for g, ix in GROUPS.items()}
