"""The 3DDFA parameter vector: layout, whitening, Euler angles.

Layout (width P = 12 + I + E): ``params[:, :12]`` is the row-major 3x4 pose
``[f*R | t]``, then I identity and E expression coefficients. Networks predict whitened
values: ``param = out * param_std + param_mean``.

Euler angles follow 3DDFA_V2 (``utils/pose.py``: ``P2sRt`` + ``matrix2angle``):
the scale is the mean norm of the first two rows of ``f*R``, the rotation rows
``r1, r2`` are those rows normalised and ``r3 = r1 x r2``; then

    yaw = asin(R[2,0]),  pitch = atan2(R[2,1], R[2,2]),  roll = atan2(R[1,0], R[0,0])

with the same gimbal-lock branches (|R[2,0]| > 0.998: roll = 0, yaw = +-pi/2,
pitch = atan2(-+R[0,1], -+R[0,2])). Equivalently ``R = Rz(roll) @ Ry(-yaw) @ Rx(pitch)``,
which :func:`pose_from_euler` builds.
"""
from __future__ import annotations

import math
from typing import Tuple, Union

import numpy as np
import torch

__all__ = ["split_params", "join_params", "whiten", "unwhiten", "whitening_stats",
           "decompose_pose", "euler_angles", "rotation_from_euler", "pose_from_euler",
           "mirror_pose", "GIMBAL_THRESHOLD"]

GIMBAL_THRESHOLD = 0.998  # 3DDFA_V2's matrix2angle


def _check_params(fn: str, params, name: str = "params") -> None:
    if not isinstance(params, torch.Tensor):
        raise TypeError(f"{fn}: argument `{name}` must be a torch.Tensor, got "
                        f"{type(params).__name__}")
    if params.dim() != 2:
        raise ValueError(f"{fn}: argument `{name}` must have shape (B, P), got "
                         f"{tuple(params.shape)}")


def split_params(params: torch.Tensor, n_id: int, n_exp: int
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, 12 + I + E) -> pose (B, 3, 4), id (B, I), exp (B, E) (views where possible)."""
    _check_params("split_params", params)
    if n_id < 0 or n_exp < 0:
        raise ValueError(f"split_params: arguments `n_id`, `n_exp` must be >= 0, got {n_id}, "
                         f"{n_exp}")
    if params.shape[1] != 12 + n_id + n_exp:
        raise ValueError(f"split_params: argument `params` must have shape (B, 12 + {n_id} + "
                         f"{n_exp}) = (B, {12 + n_id + n_exp}), got {tuple(params.shape)}")
    B = params.shape[0]
    return (params[:, :12].reshape(B, 3, 4), params[:, 12:12 + n_id],
            params[:, 12 + n_id:])


def join_params(pose: torch.Tensor, id_coeff: torch.Tensor, exp_coeff: torch.Tensor
                ) -> torch.Tensor:
    """pose (B, 3, 4), id (B, I), exp (B, E) -> (B, 12 + I + E)."""
    if not isinstance(pose, torch.Tensor) or pose.dim() != 3 or pose.shape[1:] != (3, 4):
        raise ValueError(f"join_params: argument `pose` must have shape (B, 3, 4), got "
                         f"{tuple(getattr(pose, 'shape', ()))}")
    B = pose.shape[0]
    for n, t in (("id_coeff", id_coeff), ("exp_coeff", exp_coeff)):
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[0] != B:
            raise ValueError(f"join_params: argument `{n}` must have shape ({B}, K), got "
                             f"{tuple(getattr(t, 'shape', ()))}")
    return torch.cat([pose.reshape(B, 12), id_coeff, exp_coeff], dim=1)


def _check_stats(fn: str, params: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
    _check_params(fn, params)
    P = params.shape[1]
    for n, t in (("param_mean", mean), ("param_std", std)):
        if not isinstance(t, torch.Tensor) or t.shape != (P,):
            raise ValueError(f"{fn}: argument `{n}` must have shape ({P},) to match `params` "
                             f"{tuple(params.shape)}, got {tuple(getattr(t, 'shape', ()))}")


def whiten(params: torch.Tensor, param_mean: torch.Tensor, param_std: torch.Tensor
           ) -> torch.Tensor:
    """(B, P) parameters -> (B, P) ``(params - param_mean) / param_std``."""
    _check_stats("whiten", params, param_mean, param_std)
    return (params - param_mean) / param_std


def unwhiten(out: torch.Tensor, param_mean: torch.Tensor, param_std: torch.Tensor
             ) -> torch.Tensor:
    """(B, P) whitened values (network output) -> (B, P) ``out * param_std + param_mean``."""
    _check_stats("unwhiten", out, param_mean, param_std)
    return out * param_std + param_mean


def whitening_stats(params: Union[torch.Tensor, np.ndarray], std_floor: float = 1e-6,
                    min_samples: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """Whitening statistics of a dataset of parameter vectors.

    Args:
        params: (M, P) de-whitened parameters (tensor or ndarray), finite.
        std_floor: lower bound applied to each std (absolute, in the parameter's units): a
            constant column gets ``std_floor`` instead of 0 so whitening stays finite. Pick
            it below the smallest real spread (3DDFA pose entries in BFM units spread
            ~1e-5).
        min_samples: fewer rows than this raise ValueError.

    Returns:
        mean (P,), std (P,) float32 (computed in float64; population std, ddof = 0, as
        3DDFA).
    """
    if isinstance(params, torch.Tensor):
        arr = params.detach().cpu().to(torch.float64).numpy()
    else:
        arr = np.asarray(params, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"whitening_stats: argument `params` must have shape (M, P), got "
                         f"{arr.shape}")
    if min_samples < 2:
        raise ValueError(f"whitening_stats: argument `min_samples` must be >= 2, got "
                         f"{min_samples}")
    if arr.shape[0] < min_samples:
        raise ValueError(f"whitening_stats: argument `params` has {arr.shape[0]} samples; at "
                         f"least {min_samples} are needed for a standard deviation")
    if not np.isfinite(arr).all():
        raise ValueError("whitening_stats: argument `params` contains NaN or Inf")
    if not (std_floor > 0 and math.isfinite(std_floor)):
        raise ValueError(f"whitening_stats: argument `std_floor` must be finite and > 0, got "
                         f"{std_floor}")
    mean = arr.mean(axis=0)
    std = np.maximum(arr.std(axis=0), std_floor)
    return (torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32)))


def _check_pose(fn: str, pose) -> None:
    if not isinstance(pose, torch.Tensor):
        raise TypeError(f"{fn}: argument `pose` must be a torch.Tensor, got "
                        f"{type(pose).__name__}")
    if pose.dim() != 3 or pose.shape[1:] != (3, 4):
        raise ValueError(f"{fn}: argument `pose` must have shape (B, 3, 4) ([f*R | t], "
                         f"row-major), got {tuple(pose.shape)}")
    if not pose.is_floating_point():
        raise TypeError(f"{fn}: argument `pose` must be floating point, got {pose.dtype}")


def decompose_pose(pose: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """3DDFA_V2 ``P2sRt`` batched.

    Args:
        pose: (B, 3, 4) ``[f*R | t]``.

    Returns:
        scale (B,) = mean norm of the first two rows; R (B, 3, 3) with rows r1, r2 (the first
        two rows normalised) and r3 = r1 x r2; t (B, 3). Raises ValueError when a row of the
        first two has zero norm.
    """
    _check_pose("decompose_pose", pose)
    a1, a2 = pose[:, 0, :3], pose[:, 1, :3]
    n1, n2 = a1.norm(dim=1), a2.norm(dim=1)
    if pose.shape[0] and bool(((n1 == 0) | (n2 == 0)).any()):
        raise ValueError("decompose_pose: argument `pose` has a zero first or second row in "
                         "its 3x3 block; no rotation can be recovered")
    r1, r2 = a1 / n1[:, None], a2 / n2[:, None]
    r3 = torch.cross(r1, r2, dim=1)
    return (n1 + n2) / 2, torch.stack([r1, r2, r3], dim=1), pose[:, :, 3]


def euler_angles(pose: torch.Tensor, degrees: bool = False
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(yaw, pitch, roll), each (B,), from (B, 3, 4) poses (3DDFA_V2 convention; module doc).

    Radians by default, degrees with ``degrees=True``.
    """
    _, R, _ = decompose_pose(pose)
    r20 = R[:, 2, 0]
    # |r20| <= |r1||r2| = 1 up to rounding; the clamp only absorbs rounding.
    yaw_reg = torch.asin(r20.clamp(-1.0, 1.0))
    pitch_reg = torch.atan2(R[:, 2, 1], R[:, 2, 2])
    roll_reg = torch.atan2(R[:, 1, 0], R[:, 0, 0])
    hi, lo = r20 > GIMBAL_THRESHOLD, r20 < -GIMBAL_THRESHOLD
    half_pi = torch.full_like(r20, math.pi / 2)
    yaw = torch.where(hi, half_pi, torch.where(lo, -half_pi, yaw_reg))
    pitch = torch.where(hi, torch.atan2(-R[:, 0, 1], -R[:, 0, 2]),
                        torch.where(lo, torch.atan2(R[:, 0, 1], R[:, 0, 2]), pitch_reg))
    roll = torch.where(hi | lo, torch.zeros_like(r20), roll_reg)
    if degrees:
        yaw, pitch, roll = (torch.rad2deg(a) for a in (yaw, pitch, roll))
    return yaw, pitch, roll


def _as_batch(name: str, x, B: int, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(B)
    if t.shape != (B,):
        raise ValueError(f"pose_from_euler: argument `{name}` must be a scalar or have shape "
                         f"({B},), got {tuple(t.shape)}")
    return t


def rotation_from_euler(yaw, pitch, roll, degrees: bool = False) -> torch.Tensor:
    """(B,) angles -> (B, 3, 3) ``Rz(roll) @ Ry(-yaw) @ Rx(pitch)`` (inverse of
    :func:`euler_angles` for |yaw| < asin(0.998) ~ 86.4 degrees)."""
    yaw = torch.as_tensor(yaw)
    if not yaw.is_floating_point():
        yaw = yaw.to(torch.get_default_dtype())
    yaw = yaw.reshape(-1)
    B = yaw.shape[0]
    pitch = _as_batch("pitch", pitch, B, yaw)
    roll = _as_batch("roll", roll, B, yaw)
    if degrees:
        yaw, pitch, roll = (torch.deg2rad(a) for a in (yaw, pitch, roll))
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], 1).reshape(B, 3, 3)
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], 1).reshape(B, 3, 3)  # Ry(-yaw)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], 1).reshape(B, 3, 3)
    return rz @ ry @ rx


def pose_from_euler(yaw, pitch, roll, scale, t, degrees: bool = False) -> torch.Tensor:
    """Inverse of :func:`euler_angles` + :func:`decompose_pose`.

    Args:
        yaw, pitch, roll: (B,) (or scalars with B = 1) angles, radians (degrees with
            ``degrees=True``).
        scale: (B,) or scalar f > 0.
        t: (B, 3) or (3,) translation.

    Returns:
        (B, 3, 4) ``[f * Rz(roll) Ry(-yaw) Rx(pitch) | t]``.
    """
    R = rotation_from_euler(yaw, pitch, roll, degrees=degrees)
    B = R.shape[0]
    f = _as_batch("scale", scale, B, R)
    if bool((f <= 0).any()):
        raise ValueError("pose_from_euler: argument `scale` must be > 0")
    tt = torch.as_tensor(t, dtype=R.dtype, device=R.device)
    if tt.shape == (3,):
        tt = tt.expand(B, 3)
    if tt.shape != (B, 3):
        raise ValueError(f"pose_from_euler: argument `t` must have shape ({B}, 3) or (3,), got "
                         f"{tuple(tt.shape)}")
    return torch.cat([f[:, None, None] * R, tt[:, :, None]], dim=2)


def mirror_pose(pose: torch.Tensor, crop_size: float = 120.0) -> torch.Tensor:
    """Pose of the horizontally flipped crop, for a left-right symmetric model.

    With M = diag(-1, 1, 1), a crop-space x mirrored about ``c = (crop_size + 1) / 2``
    (3DDFA_V2's image x is crop x - 1, so this is the pixel flip ``x_img -> crop_size - 1 -
    x_img``): ``[fR | t] -> [M fR M | M t + (2c, 0, 0)]``. Then
    ``reconstruct(mirror_pose(P), mirrored shape) = flipped(reconstruct(P, shape))``, where
    the mirrored shape is ``M S`` with left/right vertices swapped. Only the pose is handled
    here; yaw and roll change sign, pitch is kept. Identity/expression coefficients are not
    mirrored (landmark-based flipping is the data pipeline's job).

    Args:
        pose: (B, 3, 4).
        crop_size: crop width in pixels (120 for 3DDFA).

    Returns:
        (B, 3, 4).
    """
    _check_pose("mirror_pose", pose)
    sign = pose.new_tensor([-1.0, 1.0, 1.0])
    out = pose * sign[None, :, None]          # M @ P  (rows)
    out[:, :, :3] = out[:, :, :3] * sign[None, None, :]  # ... @ M (columns of the 3x3 block)
    out[:, 0, 3] = out[:, 0, 3] + (crop_size + 1.0)
    return out
