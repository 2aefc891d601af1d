"""Horizontal flip of 3DMM parameters (crop frame) and of landmarks.

Image flip in a crop of width ``S``: pixel ``u -> S - 1 - u``; in the model/crop frame
(``u = X - 1``) that is ``X -> S + 1 - X`` (y, z unchanged).

Pose: mirror the shape about the model's symmetry plane ``x = c`` (``F = diag(-1, 1, 1)``,
``s' = F s + d`` with ``d = (2c, 0, 0)``, vertices re-indexed by the mirror permutation) and the
image about its centre (``G = diag(-1, 1, 1)``, ``g = (S + 1, 0, 0)``). For ``X = A s + t``
the flipped face is ``X' = A' s' + t'`` with::

    A' = G A F            (negates A[0,1], A[0,2], A[1,0], A[2,0])
    t' = G t + g - A' d

Coefficients: mirroring the shape is linear, ``mirror(mean + B a) = M mean + M B a``
(``M`` = negate x about ``c`` + permute the vertices). For an exactly symmetric basis there is
a coefficient map with ``B a' = M B a - (mean - M mean)``; BFM's PCA basis is only nearly
symmetric, so the map is the least-squares one, fitted once on the model's 68 keypoints
(``a' = pinv(B) (M mean - mean) + pinv(B) M B a``, an affine map on the coefficients). Its
reconstruction error on the mirrored landmarks is reported by :meth:`ParamFlipper.residual`
(exact, ~1e-9, for a symmetric basis). The least-squares map is not an involution for an
asymmetric basis, so by default (``involutive=True``) its linear part is replaced by its
matrix sign (Newton iteration ``X <- (X + X^-1) / 2``: same eigenvectors, eigenvalues
snapped to +-1, so ``J @ J = I``) and the offset projected so that ``J o + o = 0``: flipping
twice then returns the same coefficients (to ~1e-12), and for a symmetric basis nothing
changes. On 3DDFA's 68 BFM keypoint rows (40 + 10 coefficients) the flipped parameters
reconstruct the mirrored landmarks of the 300W-LP fixture to 0.66 px max per coordinate
(0.83 px max, 0.33 px mean distance; crop pixels, 120 crop) with the sign map and 0.69 px
per coordinate with the plain least-squares map. When exact mirrored landmarks matter more than the
coefficients, flip the landmarks (:func:`flip_landmarks_pixels`) and use them as the target.
"""
from __future__ import annotations

import numpy as np

from .landmarks import IBUG68_FLIP

__all__ = ["flip_landmarks_pixels", "flip_landmarks_model", "ParamFlipper"]


def flip_landmarks_pixels(pts, width: float, perm=IBUG68_FLIP) -> np.ndarray:
    """(K, D) or (B, K, D) 0-based pixel points -> mirrored (``x -> width - 1 - x``) and
    re-indexed with ``perm`` (None: keep the order). NaNs stay NaN."""
    p = np.array(pts, dtype=np.float64)
    if p.ndim not in (2, 3) or p.shape[-1] < 2:
        raise ValueError(f"`pts` must be (K, D>=2) or (B, K, D>=2), got {p.shape}")
    p[..., 0] = width - 1 - p[..., 0]
    if perm is not None:
        if len(perm) != p.shape[-2]:
            raise ValueError(f"`perm` has {len(perm)} entries for {p.shape[-2]} points")
        p = p[..., np.asarray(perm), :]
    return p


def flip_landmarks_model(pts, size: int = 120, perm=IBUG68_FLIP) -> np.ndarray:
    """Same for model/crop-frame points (y up, ``X = u + 1``): ``X -> size + 1 - X``."""
    return flip_landmarks_pixels(pts, size + 2, perm)


class ParamFlipper:
    """Flip crop-frame parameter vectors ``[pose 12 | id I | exp E]`` horizontally.

    Args:
        mean: (3K,) keypoint mean (x, y, z interleaved); id_basis (3K, I); exp_basis (3K, E).
        perm: (K,) mirror permutation of the K points (default iBUG 68).
        center_x: x of the symmetry plane; default the mean x of ``mean`` (exact for a
            symmetric point set).
        involutive: make the coefficient map an exact involution (see the module docs).
    """

    def __init__(self, mean, id_basis, exp_basis, perm=IBUG68_FLIP, center_x=None, involutive: bool = True):
        mean = np.asarray(mean, np.float64).ravel()
        ib = np.asarray(id_basis, np.float64)
        eb = np.asarray(exp_basis, np.float64)
        k = mean.size // 3
        if mean.size != 3 * k or ib.ndim != 2 or eb.ndim != 2 or ib.shape[0] != 3 * k or eb.shape[0] != 3 * k:
            raise ValueError(f"bases must be mean (3K,), id (3K, I), exp (3K, E); got {mean.shape}, {ib.shape}, {eb.shape}")
        perm = np.asarray(perm)
        if sorted(perm.tolist()) != list(range(k)):
            raise ValueError(f"`perm` must be a permutation of range({k})")
        self.num_id, self.num_exp = ib.shape[1], eb.shape[1]
        self.perm = perm
        c = float(mean.reshape(k, 3)[:, 0].mean()) if center_x is None else float(center_x)
        self.d = np.array([2 * c, 0.0, 0.0])

        def mirror(v):  # (3K, ...) -> mirrored about x = c (without the +2c offset), permuted
            v = v.reshape((k, 3) + v.shape[1:]).copy()
            v[:, 0] *= -1
            return v[perm].reshape((3 * k,) + v.shape[2:])

        b = np.concatenate([ib, eb], 1)
        pinv = np.linalg.pinv(b)
        mm = mirror(mean)
        mm = mm + np.tile(self.d, k)           # M mean (with the plane offset)
        self.offset = pinv @ (mm - mean)       # (I+E,)
        self.matrix = pinv @ mirror(b)         # (I+E, I+E)
        if involutive and self.matrix.size:
            # matrix sign on the coefficient directions the basis sees (its row space);
            # identity on its null space (e.g. all-zero columns), so J @ J = I in any case
            _, sv, vt = np.linalg.svd(b, full_matrices=False)
            vr = vt[sv > sv.max() * 1e-10].T if sv.size and sv.max() > 0 else vt[:0].T
            x = vr.T @ self.matrix @ vr
            for _ in range(100):
                try:
                    xn = (x + np.linalg.inv(x)) / 2
                except np.linalg.LinAlgError as e:
                    raise ValueError("ParamFlipper: the coefficient mirror map is singular; "
                                     "use involutive=False") from e
                done = np.abs(xn - x).max() <= 1e-12 * max(1.0, np.abs(x).max())
                x = xn
                if done:
                    break
            else:
                raise ValueError("ParamFlipper: matrix sign iteration did not converge; use involutive=False")
            x = vr @ x @ vr.T + (np.eye(b.shape[1]) - vr @ vr.T)
            self.matrix = x
            self.offset = (self.offset - x @ self.offset) / 2
        self._b, self._mean, self._mm, self._mirror_b = b, mean, mm, mirror(b)

    @classmethod
    def from_model(cls, model, **kwargs) -> "ParamFlipper":
        """From a :class:`pyface3d.morphable.MorphableModel` (or anything with ``mean`` (3N,),
        ``id_basis`` (3N, I), ``exp_basis`` (3N, E) and ``landmarks68`` (68,) vertex ids, numpy or
        torch): the map is fitted on the model's 68 landmark vertices."""
        def arr(t):
            return np.asarray(t.detach().cpu().double() if hasattr(t, "detach") else t, np.float64)
        ids = arr(model.landmarks68).astype(np.int64)
        if ids.shape != (68,):
            raise ValueError(f"`model.landmarks68` must have shape (68,), got {ids.shape}")
        rows = (3 * ids[:, None] + np.arange(3)).ravel()
        return cls(arr(model.mean)[rows], arr(model.id_basis)[rows], arr(model.exp_basis)[rows], **kwargs)

    def residual(self, params, size: int = 120) -> float:
        """Max distance (crop-frame units) between the 68 keypoints reconstructed from the
        flipped ``params`` (P,)/(B, P) and the mirrored keypoints of ``params`` (0 for a
        symmetric basis)."""
        p = np.array(params, dtype=np.float64).reshape(-1, 12 + self.num_id + self.num_exp)
        k = self._mean.size // 3

        def rec(q):
            s = (self._mean + q[:, 12:] @ self._b.T).reshape(-1, k, 3)
            pose = q[:, :12].reshape(-1, 3, 4)
            return s @ pose[:, :, :3].transpose(0, 2, 1) + pose[:, None, :, 3]

        mirrored = rec(p)
        mirrored = mirrored[:, self.perm]
        mirrored[..., 0] = size + 1 - mirrored[..., 0]
        return float(np.linalg.norm(rec(self(p, size)) - mirrored, axis=-1).max())

    def __call__(self, params, size: int = 120) -> np.ndarray:
        """params (P,) or (B, P), crop frame of side ``size`` -> flipped params (float64)."""
        p = np.array(params, dtype=np.float64)
        single = p.ndim == 1
        p = p[None] if single else p
        if p.ndim != 2 or p.shape[1] != 12 + self.num_id + self.num_exp:
            raise ValueError(f"`params` must have {12 + self.num_id + self.num_exp} columns, got {p.shape}")
        a = p[:, :12].reshape(-1, 3, 4)[:, :, :3]
        t = p[:, :12].reshape(-1, 3, 4)[:, :, 3]
        g = np.diag([-1.0, 1.0, 1.0])
        a2 = g @ a @ g
        t2 = t @ g.T + np.array([size + 1.0, 0, 0]) - a2 @ self.d
        out = np.empty_like(p)
        out[:, :12] = np.concatenate([a2, t2[:, :, None]], 2).reshape(-1, 12)
        out[:, 12:] = p[:, 12:] @ self.matrix.T + self.offset
        return out[0] if single else out
