"""Fitting the morphable model to 68 2D image landmarks: crop-frame parameters + ROI labels.

Per face: ``roi = roi_from_landmarks(landmarks)`` (3DDFA_V2 rule), the landmarks mapped into
its crop frame (``image_to_crop``: model frame, y up; crop ``x = X - 1, y = 120 - Y``), and
:func:`pyface3d.fitting.fit_landmarks` (Gauss-Newton, batched) with per-point weights. The
iBUG jaw points (0..16) are the 2D silhouette of the face, pose dependent, while the model's
68 landmarks are fixed vertices; they get the lower weight ``jaw_weight`` (docs/labels.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

__all__ = ["FitConfig", "FitResult", "fit_labels", "point_weights"]


@dataclass
class FitConfig:
    """``prior_id``, ``prior_exp``: :func:`~pyface3d.fitting.fit_landmarks` priors (crop
    pixels^2; MAP for landmark noise of std sqrt(prior)); ``jaw_weight``: weight of iBUG
    points 0..16 (others 1); ``n_iter``: Gauss-Newton iterations; ``batch``: faces per call."""
    prior_id: float = 1.0
    prior_exp: float = 1.0
    jaw_weight: float = 0.5
    n_iter: int = 10
    batch: int = 256

    def __post_init__(self):
        for k in ("prior_id", "prior_exp", "jaw_weight"):
            v = getattr(self, k)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"FitConfig: `{k}` must be a number >= 0, got {v}")
        if self.n_iter < 1 or self.batch < 1:
            raise ValueError("FitConfig: `n_iter` and `batch` must be >= 1")


@dataclass
class FitResult:
    """``params`` (F, P) crop-frame de-whitened; ``roi`` (F, 4); ``landmarks`` (F, 68, 2) the
    fitted model's landmarks in image pixels; ``error`` (F,) mean 2D distance to the targets
    (pixels) and ``error_inner`` over points 17..67; ``yaw`` (F,) degrees; ``z_rms`` (F,)
    rms of the whitened shape + expression coefficients."""
    params: np.ndarray
    roi: np.ndarray
    landmarks: np.ndarray
    error: np.ndarray
    error_inner: np.ndarray
    yaw: np.ndarray
    z_rms: np.ndarray


def point_weights(jaw_weight: float) -> np.ndarray:
    w = np.ones(68)
    w[:17] = jaw_weight
    return w


def fit_labels(model, landmarks: np.ndarray, config: Optional[FitConfig] = None,
               progress: bool = False) -> FitResult:
    """Fit ``model`` (a :class:`~pyface3d.morphable.MorphableModel`) to (F, 68, 2) image
    landmarks (finite)."""
    from ..data.roi import crop_to_image, image_to_crop, roi_from_landmarks
    from ..fitting import fit_landmarks
    from ..morphable.params import euler_angles

    c = config or FitConfig()
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"argument `landmarks` must be (F, 68, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("argument `landmarks` must be finite (fit only kept faces)")
    n = len(lm)
    pw = torch.from_numpy(point_weights(c.jaw_weight))
    out = {k: [] for k in ("params", "roi", "landmarks")}
    rng = range(0, n, c.batch)
    if progress:
        from tqdm import tqdm
        rng = tqdm(rng, desc="fit", unit="batch")
    for s in rng:
        b = lm[s:s + c.batch]
        roi = roi_from_landmarks(b)
        lmc = torch.from_numpy(image_to_crop(b, roi))
        vis = pw[None].expand(len(b), 68).contiguous()
        p = fit_landmarks(model, lmc, visibility=vis, n_iter=c.n_iter, prior_id=c.prior_id,
                          prior_exp=c.prior_exp)
        with torch.no_grad():
            rec = model.reconstruct(p.to(model.mean.dtype), landmarks_only=True)
            rec = rec[..., :2].double().numpy()
        out["params"].append(p.numpy().astype(np.float64))
        out["roi"].append(roi)
        out["landmarks"].append(crop_to_image(rec, roi))
    if n == 0:
        p_dim = len(model.param_mean)
        return FitResult(np.zeros((0, p_dim)), np.zeros((0, 4)), np.zeros((0, 68, 2)),
                         *(np.zeros(0) for _ in range(4)))
    params = np.concatenate(out["params"])
    fl = np.concatenate(out["landmarks"])
    d = np.sqrt(((fl - lm) ** 2).sum(-1))
    yaw = euler_angles(torch.from_numpy(params[:, :12].reshape(-1, 3, 4)), degrees=True)[0]
    pm = model.param_mean.double().numpy()
    ps = model.param_std.double().numpy()
    z = (params[:, 12:] - pm[12:]) / ps[12:]
    return FitResult(params, np.concatenate(out["roi"]), fl, d.mean(1), d[:, 17:].mean(1),
                     yaw.numpy(), np.sqrt((z ** 2).mean(1)))
