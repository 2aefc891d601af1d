"""Combining the two teachers' 68 landmarks: agreement, rejection and per-point fusion.

* ``agreement = mean_j ||a_j - b_j|| / sqrt(w h)`` (2D), ``w, h`` the box of the two
  teachers' mean landmarks.
* A face is rejected when a teacher found nothing, or ``agreement > threshold``.
* ``fused_j = wa_j a_j + (1 - wa_j) b_j`` with inverse-variance weights
  ``wa_j = (1 / ea_j) / (1 / ea_j + 1 / eb_j)``, ``e_j`` the teacher's mean squared error of
  point j / box size^2 on labelled faces (:func:`calibrate`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Dict

import numpy as np

__all__ = ["box_size", "agreement", "Fusion", "calibrate", "nme_interocular", "fuse"]


def box_size(pts: np.ndarray) -> np.ndarray:
    """sqrt(w h) of the landmark box, (..., K, 2+) -> (...)."""
    p = np.asarray(pts, np.float64)[..., :2]
    wh = np.nanmax(p, -2) - np.nanmin(p, -2)
    return np.sqrt(wh[..., 0] * wh[..., 1])


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F, 68, 2+) x2 -> (F,) mean 2D distance / sqrt(box area of their mean)."""
    a = np.asarray(a, np.float64)[..., :2]
    b = np.asarray(b, np.float64)[..., :2]
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"arguments `a` and `b` must both be (F, K, 2+), got {a.shape} and {b.shape}")
    d = np.sqrt(((a - b) ** 2).sum(-1)).mean(-1)
    return d / box_size(0.5 * (a + b))


def nme_interocular(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(F,) mean 68-point error / outer-eye-corner distance (points 36, 45; 300W)."""
    pred = np.asarray(pred, np.float64)[..., :2]
    gt = np.asarray(gt, np.float64)[..., :2]
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    return np.sqrt(((pred - gt) ** 2).sum(-1)).mean(-1) / io


@dataclass
class Fusion:
    """Fusion rule. ``weight_a`` (68,): weight of teacher A (mb05) per point (B gets 1 - w);
    ``threshold``: largest accepted agreement; ``names``: (A, B) teacher names;
    ``info``: how it was calibrated."""
    weight_a: np.ndarray
    threshold: float
    names: tuple = ("mb05", "mediapipe")
    info: dict = None

    def __post_init__(self):
        self.weight_a = np.asarray(self.weight_a, np.float64)
        if self.weight_a.shape != (68,) or (self.weight_a < 0).any() or (self.weight_a > 1).any():
            raise ValueError("Fusion: `weight_a` must be (68,) in [0, 1]")
        if not np.isfinite(self.threshold) or self.threshold <= 0:
            raise ValueError(f"Fusion: `threshold` must be a positive number, got {self.threshold}")

    def __call__(self, a: np.ndarray, b: np.ndarray, found_a=None, found_b=None):
        """Fuse (F, 68, 2+) landmarks of the two teachers. Returns ``(fused (F, 68, 2),
        keep (F,) bool, agreement (F,) (NaN where a teacher found nothing), reason (F,)
        str: '' kept, 'no_<name>' or 'disagree')``."""
        a = np.asarray(a, np.float64)[..., :2]
        b = np.asarray(b, np.float64)[..., :2]
        if a.shape != b.shape or a.shape[1:] != (68, 2):
            raise ValueError(f"arguments `a` and `b` must both be (F, 68, 2+), got {a.shape} "
                             f"and {b.shape}")
        fa = np.isfinite(a).all((1, 2)) if found_a is None else np.asarray(found_a, bool)
        fb = np.isfinite(b).all((1, 2)) if found_b is None else np.asarray(found_b, bool)
        both = fa & fb
        agr = np.full(len(a), np.nan)
        if both.any():
            agr[both] = agreement(a[both], b[both])
        reason = np.full(len(a), "", dtype=object)
        reason[~fb] = f"no_{self.names[1]}"
        reason[~fa] = f"no_{self.names[0]}"
        reason[both & ~(agr <= self.threshold)] = "disagree"
        keep = reason == ""
        w = self.weight_a[None, :, None]
        fused = np.where(both[:, None, None], w * a + (1 - w) * b, np.nan)
        return fused, keep, agr, reason.astype(str)

    def to_dict(self) -> dict:
        return {"weight_a": [round(float(x), 6) for x in self.weight_a],
                "threshold": float(self.threshold), "names": list(self.names),
                "info": self.info or {}}

    @classmethod
    def from_dict(cls, d: dict) -> "Fusion":
        return cls(np.asarray(d["weight_a"]), float(d["threshold"]), tuple(d["names"]),
                   d.get("info", {}))


def calibrate(a: np.ndarray, b: np.ndarray, gt: np.ndarray, quantile: float = 0.95,
              names=("mb05", "mediapipe")) -> Fusion:
    """Fit the fusion rule on labelled faces where both teachers found the face.

    Weights: inverse of each teacher's per-point mean squared error (normalised by the
    ground truth's box size). Threshold: the ``quantile`` of the agreement on these faces
    (i.e. on data like the calibration set ``1 - quantile`` of the faces are rejected).
    """
    a = np.asarray(a, np.float64)[..., :2]
    b = np.asarray(b, np.float64)[..., :2]
    gt = np.asarray(gt, np.float64)[..., :2]
    if not (a.shape == b.shape == gt.shape) or a.ndim != 3 or a.shape[1] != 68 or len(a) < 2:
        raise ValueError(f"arguments `a`, `b`, `gt` must be (F >= 2, 68, 2), got {a.shape}, "
                         f"{b.shape}, {gt.shape}")
    if not (0 < quantile <= 1):
        raise ValueError(f"argument `quantile` must be in (0, 1], got {quantile}")
    s = box_size(gt)[:, None]
    ea = (((a - gt) ** 2).sum(-1) / s ** 2).mean(0)
    eb = (((b - gt) ** 2).sum(-1) / s ** 2).mean(0)
    wa = (1 / ea) / (1 / ea + 1 / eb)
    agr = agreement(a, b)
    thr = float(np.quantile(agr, quantile))
    info = {"faces": int(len(a)), "quantile": quantile,
            "rms_error_a": [round(float(x), 6) for x in np.sqrt(ea)],
            "rms_error_b": [round(float(x), 6) for x in np.sqrt(eb)]}
    return Fusion(wa, thr, tuple(names), info)


def fuse(a, b, fusion: Fusion, found_a=None, found_b=None):
    """Shortcut for ``fusion(a, b, found_a, found_b)``."""
    return fusion(a, b, found_a, found_b)


def save_fusion(path: str, fusion: Fusion) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(fusion.to_dict(), f, indent=1)
