"""Parameter conventions: 300W-LP / AFLW2000-3D ``.mat`` fits -> 3DDFA 62-parameter vectors.

Frames used here (see also :mod:`pyface3d.data.roi`):

* **model/crop frame** — what a 3DDFA parameter vector reconstructs: ``X = P[:, :3] s + t``
  with y up; crop pixels are ``u = X - 1, v = size - Y``.
* **image affine** — a (3, 4) matrix ``A`` mapping a model-space shape point ``s`` to
  0-based image pixels (x right, y down) and a depth ``z`` in pixel units:
  ``[x, y, z] = A[:, :3] s + A[:, 3]``.

300W-LP (and AFLW2000-3D) store ``Pose_Para = [pitch, yaw, roll, tx, ty, tz, f]`` and the
Matlab projection ``V = f * R @ s + t``, image (1-based) ``x = V0``, ``y = H + 1 - V1`` with
``R = Rx(pitch) @ Ry(yaw) @ Rz(roll)`` and (note the transposed sine signs)::

    Rx = [[1, 0, 0], [0, c, s], [0, -s, c]]     Ry = [[c, 0, -s], [0, 1, 0], [s, 0, c]]
    Rz = [[c, s, 0], [-s, c, 0], [0, 0, 1]]

In 0-based pixels ``x = V0 - 1``, ``y = H - V1`` — the same as 3DDFA_V2's crop map with a
virtual crop of side ``H`` — so 3DDFA's model frame and 300W-LP's coincide up to a scale and a
shift. ``Shape_Para`` (199) and ``Exp_Para`` (29) are in the units of 3DDFA's ``w_shp`` /
``w_exp`` (raw BFM principal components, not divided by the PCA standard deviation): a least
squares fit of one scale per basis on the fixture gives 0.90 / 0.95, i.e. 1 within what the
40/10-coefficient truncation explains, so the first 40 / 10 coefficients are copied unchanged.
"""
from __future__ import annotations

import numpy as np

from .roi import CROP_SIZE

__all__ = ["angles_to_matrix_300wlp", "pose_para_to_image_affine", "params_from_300wlp",
           "image_affine_to_params", "params_to_image_affine"]


def angles_to_matrix_300wlp(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """300W-LP / 3DDFA Matlab ``RotationMatrix(phi, gamma, theta)`` (radians) -> (3, 3)."""
    cx, sx = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cz, sz = np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def pose_para_to_image_affine(pose_para, image_height: int) -> np.ndarray:
    """300W-LP ``Pose_Para`` (7,) + the image height -> (3, 4) image affine (0-based pixels).

    ``x = f R0 s + tx - 1``, ``y = H - (f R1 s + ty)``, ``z = f R2 s + tz``.
    """
    p = np.asarray(pose_para, dtype=np.float64).ravel()
    if p.shape != (7,):
        raise ValueError(f"`pose_para` must have 7 values [pitch, yaw, roll, tx, ty, tz, f], got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("`pose_para` has non-finite values")
    if image_height <= 0:
        raise ValueError(f"`image_height` must be positive, got {image_height}")
    fr = p[6] * angles_to_matrix_300wlp(*p[:3])
    a = np.zeros((3, 4))
    a[0, :3], a[0, 3] = fr[0], p[3] - 1
    a[1, :3], a[1, 3] = -fr[1], image_height - p[4]
    a[2, :3], a[2, 3] = fr[2], p[5]
    return a


def image_affine_to_params(affine, roi, size: int = CROP_SIZE) -> np.ndarray:
    """Image affine (3, 4) or (B, 3, 4) -> crop-frame pose (12,) / (B, 12) (row-major 3x4).

    Inverse of :func:`params_to_image_affine`: with ``sx = (x2-x1)/size``, ``sy = (y2-y1)/size``
    the crop pose is ``row0 = A0 / sx`` (+1 on t), ``row1 = -A1 / sy`` (t: ``size + (y1 - t1)/sy``),
    ``row2 = A2 / sx``.
    """
    a = np.asarray(affine, dtype=np.float64)
    r = np.asarray(roi, dtype=np.float64)
    single = a.ndim == 2
    a, r = (a[None], r[None]) if single else (a, r)
    if a.shape[1:] != (3, 4) or r.shape != (a.shape[0], 4):
        raise ValueError(f"`affine` must be (3, 4)/(B, 3, 4) and `roi` (4,)/(B, 4), got {a.shape}, {r.shape}")
    sx = ((r[:, 2] - r[:, 0]) / size)[:, None]
    sy = ((r[:, 3] - r[:, 1]) / size)[:, None]
    if np.any(sx <= 0) or np.any(sy <= 0):
        raise ValueError("`roi` needs x2 > x1 and y2 > y1")
    p = np.empty_like(a)
    p[:, 0] = a[:, 0] / sx
    p[:, 0, 3] = (a[:, 0, 3] - r[:, 0]) / sx[:, 0] + 1
    p[:, 1] = -a[:, 1] / sy
    p[:, 1, 3] = size - (a[:, 1, 3] - r[:, 1]) / sy[:, 0]
    p[:, 2] = a[:, 2] / sx
    p = p.reshape(-1, 12)
    return p[0] if single else p


def params_to_image_affine(params, roi, size: int = CROP_SIZE) -> np.ndarray:
    """Crop-frame pose (the first 12 params; (P,) or (B, P)) + ROI -> image affine (3, 4)/(B, 3, 4).

    Consistent with :func:`pyface3d.data.roi.crop_to_image` applied to the reconstruction.
    """
    q = np.asarray(params, dtype=np.float64)
    r = np.asarray(roi, dtype=np.float64)
    single = q.ndim == 1
    q, r = (q[None], r[None]) if single else (q, r)
    if q.ndim != 2 or q.shape[1] < 12 or r.shape != (q.shape[0], 4):
        raise ValueError(f"`params` must be (P>=12,)/(B, P) and `roi` (4,)/(B, 4), got {q.shape}, {r.shape}")
    p = q[:, :12].reshape(-1, 3, 4)
    sx = ((r[:, 2] - r[:, 0]) / size)[:, None]
    sy = ((r[:, 3] - r[:, 1]) / size)[:, None]
    a = np.empty_like(p)
    a[:, 0] = p[:, 0] * sx
    a[:, 0, 3] = (p[:, 0, 3] - 1) * sx[:, 0] + r[:, 0]
    a[:, 1] = -p[:, 1] * sy
    a[:, 1, 3] = (size - p[:, 1, 3]) * sy[:, 0] + r[:, 1]
    a[:, 2] = p[:, 2] * sx
    return a[0] if single else a


def params_from_300wlp(mat: dict, image_height: int, roi, size: int = CROP_SIZE,
                       num_shape: int = 40, num_exp: int = 10) -> np.ndarray:
    """62 crop-frame 3DDFA parameters from a 300W-LP / AFLW2000-3D ``.mat`` dict.

    Args:
        mat: dict with ``Pose_Para`` (1, 7), ``Shape_Para`` (199, 1), ``Exp_Para`` (29, 1).
        image_height: height of the original image (the y flip).
        roi: (4,) crop box in image pixels.
        num_shape, num_exp: leading coefficients kept (3DDFA: 40 and 10).

    Returns:
        float64 (12 + num_shape + num_exp,) ``[crop pose (12) | shape | exp]``.
    """
    for k in ("Pose_Para", "Shape_Para", "Exp_Para"):
        if k not in mat:
            raise KeyError(f"`mat` has no {k!r} (keys: {sorted(k for k in mat if not k.startswith('__'))})")
    shp = np.asarray(mat["Shape_Para"], dtype=np.float64).ravel()
    exp = np.asarray(mat["Exp_Para"], dtype=np.float64).ravel()
    if shp.size < num_shape or exp.size < num_exp:
        raise ValueError(f"`mat` has {shp.size} shape / {exp.size} expression coefficients, "
                         f"need {num_shape} / {num_exp}")
    pose = image_affine_to_params(pose_para_to_image_affine(mat["Pose_Para"], image_height), roi, size)
    return np.concatenate([pose, shp[:num_shape], exp[:num_exp]])
