"""Face regions of a morphable model's mesh, and the geometry added to close its holes.

Everything here is computed once per model from its mean shape and its 68 landmark vertices
(iBUG order), in the frontal projection of the mean (model frame: x right, y up, z toward the
viewer), so it works for any :class:`~pyface3d.morphable.MorphableModel` with landmarks.

* **Holes.** Face meshes such as ICT-FaceKit's face region are open at the eyes and the
  mouth (the eyeballs and the mouth socket are separate meshes). Each boundary loop whose
  centroid lies near an eye (landmarks 36-41, 42-47) or the inner lips (60-67) is closed with
  concentric rings of new vertices (a shrunken copy of the loop per ring, plus a centre
  vertex), wound consistently with the mesh. A new vertex is a fixed convex combination of
  loop vertices plus a fixed offset toward the back of the head (eyes: slightly recessed,
  mouth: a funnel into the head), so it follows identity, expression and pose exactly: for
  posed vertices ``V`` (B, N, 3) and pose ``A = f R`` the added ones are
  ``W @ V + offset @ A^T`` (:meth:`FaceTopology.extend`). A closed eye or mouth collapses
  its fill with it. The outer boundary (the largest loop) is left open.
* **Regions** per (augmented) vertex: eyes (inside the eye contour or an eye fill), mouth
  (the mouth fill), lips (inside the outer lip contour 48-59), brows (a band around the
  brow polylines 17-21, 22-26), nose (hull of 27-35, widened at the nostril wings), skin.
  Triangle labels are the majority of their vertex labels (ties: the lower id).
* **Albedo weights** (soft, in [0, 1]): lips, brows, stubble area, cheeks, upper lash line,
  plus the position of each eye vertex relative to its eye centre (for iris and pupil) and
  the depth of each mouth-fill vertex.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np
import torch

__all__ = ["SEG_LABELS", "SEG_COLORS", "FaceTopology", "build_topology", "boundary_loops",
           "REGION_PRIORITY"]

#: Segmentation ids written to ``seg/NAME.png`` (one uint8 label per pixel).
SEG_LABELS: Dict[int, str] = {0: "background", 1: "skin", 2: "brows", 3: "eyes", 4: "nose",
                              5: "lips", 6: "mouth", 7: "occluder"}
#: Display colours (RGB) of the labels, for contact sheets.
SEG_COLORS = np.array([[0, 0, 0], [224, 172, 140], [90, 50, 20], [60, 160, 255],
                       [240, 120, 40], [220, 30, 60], [110, 0, 40], [0, 200, 90]], np.uint8)
SKIN, BROWS, EYES, NOSE, LIPS, MOUTH, OCCLUDER = 1, 2, 3, 4, 5, 6, 7
#: order in which overlapping vertex regions are resolved (first wins)
REGION_PRIORITY = (MOUTH, EYES, LIPS, BROWS, NOSE, SKIN)

_EYE_RINGS = (0.85, 0.68, 0.52, 0.38, 0.25, 0.12)
_MOUTH_RINGS = (0.8, 0.55, 0.3)


@dataclass
class FaceTopology:
    """The augmented mesh and its regions (numpy arrays; see the module doc)."""
    n_model: int                     # N, vertices of the model
    triangles: np.ndarray            # (F', 3) int64: the model's, then the fills'
    n_model_triangles: int           # F
    extra_src: np.ndarray            # (X, K) int64 loop vertices of each added vertex
    extra_w: np.ndarray              # (X, K) float64 convex weights
    extra_offset: np.ndarray         # (X, 3) float64, model frame, model units
    vertex_label: np.ndarray         # (N + X,) uint8 region id
    triangle_label: np.ndarray       # (F',) uint8
    weights: Dict[str, np.ndarray]   # soft albedo weights, (N + X,) float32 each
    eye_uv: np.ndarray               # (N + X, 2) float32, offset from the eye centre / half width
    eye_side: np.ndarray             # (N + X,) int8: 0 none, 1 subject's right, 2 left
    mouth_depth: np.ndarray          # (N + X,) float32: 0 at the lips .. 1 deepest (mouth fill)
    mean: np.ndarray                 # (N + X, 3) float64 augmented mean shape
    filled: Dict[str, int] = field(default_factory=dict)  # loop sizes closed: right_eye, ...
    scale: float = 1.0               # eye width of the mean shape (model units)

    def __post_init__(self):
        self.mean_f32 = self.mean.astype(np.float32)
        self._support = {k: (np.nonzero(w > 0)[0], w[w > 0]) for k, w in self.weights.items()}
        self.eye_index = np.nonzero(self.eye_side > 0)[0]
        self.mouth_index = np.nonzero(self.mouth_depth > 0)[0]
        X = self.extra_src.shape[0]
        rows = np.repeat(np.arange(X), self.extra_src.shape[1])
        self._extra_matrix = sparse_csr(rows, self.extra_src.reshape(-1),
                                        self.extra_w.reshape(-1),
                                        (X, self.n_model)) if X else None
        self._extra_cache = {}

    @property
    def n_vertices(self) -> int:
        return self.n_model + self.extra_src.shape[0]

    def support(self, name: str):
        """(vertex ids, weights) where the albedo weight ``name`` is > 0."""
        return self._support[name]

    def extend(self, vertices: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        """Posed model vertices (B, N, 3) and their poses' linear part ``A = f R`` (B, 3, 3)
        -> the augmented vertices (B, N + X, 3)."""
        if self._extra_matrix is None:
            return vertices
        key = (vertices.device, vertices.dtype)
        if key not in self._extra_cache:
            self._extra_cache[key] = (
                self._extra_matrix.to(device=vertices.device, dtype=vertices.dtype),
                torch.as_tensor(self.extra_offset, dtype=vertices.dtype, device=vertices.device))
        W, off = self._extra_cache[key]
        ex = torch.stack([W @ v for v in vertices]) + off[None] @ pose.transpose(1, 2)
        return torch.cat([vertices, ex], 1)


def sparse_csr(rows, cols, values, shape) -> torch.Tensor:
    """A float32 CSR matrix from COO triplets (duplicates summed)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        m = torch.sparse_coo_tensor(
            torch.as_tensor(np.stack([np.asarray(rows), np.asarray(cols)]), dtype=torch.long),
            torch.as_tensor(np.asarray(values), dtype=torch.float32), tuple(shape),
            check_invariants=True).coalesce()
        return m.to_sparse_csr()


def boundary_loops(triangles: np.ndarray) -> List[Tuple[np.ndarray, bool]]:
    """Ordered boundary loops of a triangle mesh, each following the direction its boundary
    edges have in their triangles, as ``(vertex ids, closed)``. Where several loops touch (a
    vertex with two outgoing boundary edges) a walk can end early; such walks are returned
    with ``closed=False`` and are never filled."""
    t = np.asarray(triangles, np.int64)
    d = np.concatenate([t[:, [0, 1]], t[:, [1, 2]], t[:, [2, 0]]])
    key = np.sort(d, 1)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    bd = d[cnt[inv.ravel()] == 1]
    nxt: Dict[int, List[int]] = {}
    for u, v in bd.tolist():
        nxt.setdefault(u, []).append(v)
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, u = [], start
        while u not in seen and u in nxt:
            seen.add(u)
            loop.append(u)
            u = nxt[u][0]
        closed = u == start and all(len(nxt[v]) == 1 for v in loop)
        loops.append((np.array(loop, np.int64), closed))
    return loops


def _inside(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test: pts (M, 2), poly (K, 2) -> (M,) bool."""
    x, y = pts[:, 0:1], pts[:, 1:2]
    a, b = poly, np.roll(poly, -1, 0)
    cond = (a[None, :, 1] > y) != (b[None, :, 1] > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = a[None, :, 0] + (y - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (
            b[None, :, 1] - a[None, :, 1])
    return (cond & (x < xc)).sum(1) % 2 == 1


def _seg_dist(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from pts (M, 2) to the segments a->b (K, 2) -> (M, K)."""
    ab = b - a
    ap = pts[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-30)[None], 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab[None], axis=-1)


def _polygon_sdist(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance to a closed polygon (negative inside)."""
    d = _seg_dist(pts, poly, np.roll(poly, -1, 0)).min(1)
    return np.where(_inside(pts, poly), -d, d)


def _polyline_dist(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    return _seg_dist(pts, line[:-1], line[1:]).min(1)


def _smooth(x: np.ndarray) -> np.ndarray:
    """Smoothstep of x clipped to [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _hull(p: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain) of 2D points, counter-clockwise."""
    pts = sorted(map(tuple, p.tolist()))

    def half(seq):
        out = []
        for q in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (q[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (q[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(q)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1], np.float64)


def _fill_loop(loop: np.ndarray, first_new: int, rings) -> Tuple[list, list, list, list]:
    """Rings of new vertices inside ``loop`` (mesh order). Returns per new vertex its source
    loop ids, weights and ring radius (centre: 0), and the new triangles."""
    m = len(loop)
    srcs, ws, radii, tris = [], [], [], []
    prev = list(loop)
    nid = first_new
    for r in rings:
        cur = []
        for j in range(m):
            w = np.full(m, (1.0 - r) / m)
            w[j] += r
            srcs.append(loop.copy())
            ws.append(w)
            radii.append(r)
            cur.append(nid)
            nid += 1
        for j in range(m):
            k = (j + 1) % m
            tris.append((prev[k], prev[j], cur[j]))
            tris.append((prev[k], cur[j], cur[k]))
        prev = cur
    srcs.append(loop.copy())
    ws.append(np.full(m, 1.0 / m))
    radii.append(0.0)
    centre = nid
    for j in range(m):
        tris.append((prev[(j + 1) % m], prev[j], centre))
    return srcs, ws, radii, tris


def build_topology(model) -> FaceTopology:
    """Regions and hole fills of ``model`` (anything with ``mean`` (3N,), ``triangles``
    (F, 3) and ``landmarks68`` (68,)); see the module doc."""
    mean = model.mean.detach().cpu().double().reshape(-1, 3).numpy()
    tris = model.triangles.detach().cpu().long().numpy()
    lmk = model.landmarks68.detach().cpu().long().numpy()
    if tris.ndim != 2 or tris.shape[0] == 0:
        raise ValueError("synth: the morphable model has no triangles; it cannot be rendered")
    N = mean.shape[0]
    L = mean[lmk]
    ew = float(np.mean([np.linalg.norm(L[39] - L[36]), np.linalg.norm(L[45] - L[42])]))
    if not ew > 0:
        raise ValueError("synth: the model's eye-corner landmarks (36, 39, 42, 45) coincide")
    back = np.array([0.0, 0.0, -1.0])
    mouth_w = float(np.linalg.norm(L[54] - L[48]))

    # ---- close the eye and mouth holes
    loops = boundary_loops(tris)
    largest = max(range(len(loops)), key=lambda k: len(loops[k][0])) if loops else -1
    targets = {"right_eye": L[36:42].mean(0), "left_eye": L[42:48].mean(0),
               "mouth": L[60:68].mean(0)}
    srcs, ws, offs, new_tris, kinds, radii = [], [], [], [], [], []
    filled: Dict[str, int] = {}
    used = set()
    for name, c in targets.items():
        best, bd = None, 0.6 * ew
        for k, (lp, closed) in enumerate(loops):
            if k == largest or k in used or len(lp) < 3 or not closed:
                continue
            d = float(np.linalg.norm(mean[lp].mean(0) - c))
            if d < bd:
                best, bd = k, d
        if best is None:
            continue
        used.add(best)
        lp = loops[best][0]
        rings = _MOUTH_RINGS if name == "mouth" else _EYE_RINGS
        s, w, r, t = _fill_loop(lp, N + len(srcs), rings)
        for rr in r:
            if name == "mouth":
                offs.append(back * (1.0 - rr) * 0.35 * mouth_w)
            else:
                offs.append(back * 0.05 * ew)
        srcs += s
        ws += w
        radii += r
        kinds += [name] * len(s)
        new_tris += t
        filled[name] = int(len(lp))
    X = len(srcs)
    K = max((len(s) for s in srcs), default=1)
    extra_src = np.zeros((X, K), np.int64)
    extra_w = np.zeros((X, K), np.float64)
    for j, (s, w) in enumerate(zip(srcs, ws)):
        extra_src[j, :len(s)] = s
        extra_w[j, :len(w)] = w
    extra_offset = np.array(offs, np.float64).reshape(X, 3)
    all_mean = np.concatenate([mean, (mean[extra_src] * extra_w[..., None]).sum(1)
                               + extra_offset]) if X else mean
    all_tris = np.concatenate([tris, np.array(new_tris, np.int64).reshape(-1, 3)])
    kinds_all = np.array([""] * N + kinds, dtype=object)
    radii_all = np.concatenate([np.ones(N), np.array(radii, np.float64)])

    # ---- regions in the frontal projection of the mean
    P = all_mean[:, :2]
    M = P.shape[0]
    label = np.full(M, SKIN, np.uint8)
    soft = 0.08 * ew
    weights: Dict[str, np.ndarray] = {}

    # eyes
    eye_uv = np.zeros((M, 2), np.float32)
    eye_side = np.zeros(M, np.int8)
    for side, (a, b), fill in ((1, (36, 42), "right_eye"), (2, (42, 48), "left_eye")):
        poly = L[a:b, :2]
        centre = poly.mean(0)
        half = 0.5 * float(np.linalg.norm(L[a + 3, :2] - L[a, :2]))
        inside = _inside(P, poly) | (kinds_all == fill)
        eye_side[inside] = side
        eye_uv[inside] = ((P[inside] - centre) / max(half, 1e-12)).astype(np.float32)
    eye_mask = eye_side > 0

    # lash line: the upper eye contour 36-39 / 42-45 (through 37, 38 / 43, 44)
    lash = np.zeros(M)
    for idx in ((36, 37, 38, 39), (42, 43, 44, 45)):
        d = _polyline_dist(P, L[list(idx), :2])
        lash = np.maximum(lash, 1.0 - _smooth(d / (0.1 * ew)))
    weights["lashes"] = lash

    # lips
    sd_lips = _polygon_sdist(P, L[48:60, :2])
    lips_in = sd_lips < 0
    weights["lips"] = 1.0 - _smooth((sd_lips + soft) / (2 * soft))

    # brows: band around each polyline, shifted down a little
    brow_w = np.zeros(M)
    brow_in = np.zeros(M, bool)
    for a, b in ((17, 22), (22, 27)):
        line = L[a:b, :2] - np.array([0.0, 0.1 * ew])
        d = _polyline_dist(P, line)
        half = 0.2 * ew
        brow_in |= d < half
        brow_w = np.maximum(brow_w, 1.0 - _smooth((d - half + soft) / (2 * soft)))
    weights["brows"] = brow_w

    # nose: hull of 27..35, widened at the wings and the bridge
    wing = 0.4 * (L[35, :2] - L[31, :2])
    up = np.array([0.12 * ew, 0.0])
    nose_pts = np.concatenate([L[27:36, :2], [L[31, :2] - wing, L[35, :2] + wing,
                                             L[27, :2] - up, L[27, :2] + up]])
    nose_in = _inside(P, _hull(nose_pts))

    # cheeks (blush) and the stubble area (below the nose, inside the jaw, not the lips)
    cheek = np.zeros(M)
    for j, n in ((3, 31), (13, 35)):
        c = 0.5 * (L[j, :2] + L[n, :2]) + np.array([0.0, 0.25 * ew])
        cheek = np.maximum(cheek, np.exp(-np.sum((P - c) ** 2, 1) / (2 * (0.55 * ew) ** 2)))
    weights["cheeks"] = cheek
    jaw = np.concatenate([L[2:15, :2], [[L[14, 0], L[33, 1]], [L[2, 0], L[33, 1]]]])
    sd_jaw = _polygon_sdist(P, jaw)
    below_nose = _smooth((L[33, 1] - 0.1 * ew - P[:, 1]) / (0.3 * ew))
    weights["stubble"] = (1.0 - _smooth((sd_jaw + soft) / (3 * soft))) * below_nose * (
        1.0 - weights["lips"])

    # labels by priority: mouth fill, eyes, lips, brows, nose, skin
    mouth_fill = kinds_all == "mouth"
    for lab, m in ((NOSE, nose_in), (BROWS, brow_in), (LIPS, lips_in), (EYES, eye_mask),
                   (MOUTH, mouth_fill)):
        label[m] = lab
    weights["lips"] = np.where(mouth_fill | eye_mask, 0.0, weights["lips"])
    weights["brows"] = np.where(eye_mask, 0.0, weights["brows"])
    mouth_depth = np.where(mouth_fill, 1.0 - radii_all, 0.0).astype(np.float32)

    tl = label[all_tris]
    tri_label = _majority(tl)
    return FaceTopology(
        n_model=N, triangles=all_tris, n_model_triangles=tris.shape[0], extra_src=extra_src,
        extra_w=extra_w, extra_offset=extra_offset, vertex_label=label,
        triangle_label=tri_label, weights={k: v.astype(np.float32) for k, v in weights.items()},
        eye_uv=eye_uv, eye_side=eye_side, mouth_depth=mouth_depth, mean=all_mean,
        filled=filled, scale=ew)


def _majority(tl: np.ndarray) -> np.ndarray:
    """Majority label of each row of 3 (all different: the lowest id)."""
    a, b, c = tl[:, 0], tl[:, 1], tl[:, 2]
    out = np.minimum(np.minimum(a, b), c)
    out = np.where(b == c, b, out)
    out = np.where((a == b) | (a == c), a, out)
    return out.astype(np.uint8)
