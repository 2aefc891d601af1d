"""Regions of interest, 120x120 crops and the crop <-> image coordinate maps (3DDFA_V2).

Coordinates: image and crop pixels are 0-based, x to the right, y down; a pixel's centre
has integer coordinates. An ROI box is ``[x1, y1, x2, y2]`` (floats) in image pixels; the
crop of side ``size`` samples it so that crop pixel ``u`` sits at image
``x = u * (x2 - x1) / size + x1`` (likewise y), which is the map 3DDFA_V2 uses to put
predictions back into the image.

Model frame (what a 62-parameter vector reconstructs, y up) -> crop -> image, as in
3DDFA_V2's ``similar_transform``::

    u = X - 1,   v = size - Y                    (crop pixels, y down)
    x = u * sx + x1,   y = v * sy + y1,   z = Z * sx      sx = (x2-x1)/size, sy = (y2-y1)/size

3DDFA_V2 also subtracts 1 from z and then the minimum z of the face (a per-face depth
offset that no 2D metric sees); :func:`crop_to_image` keeps the invertible part only
(``z = Z * sx``) so that :func:`image_to_crop` is its exact inverse.
"""
from __future__ import annotations

import math
from typing import Union

import cv2
import numpy as np
import torch

__all__ = ["roi_from_box", "roi_from_landmarks", "crop_image", "crop_to_image", "image_to_crop",
           "CROP_SIZE"]

CROP_SIZE = 120
Array = Union[np.ndarray, torch.Tensor]


def _as_boxes(box, name: str) -> tuple[np.ndarray, bool]:
    b = np.asarray(box.detach().cpu() if isinstance(box, torch.Tensor) else box, dtype=np.float64)
    single = b.ndim == 1
    b = b.reshape(1, -1) if single else b
    if b.ndim != 2 or b.shape[1] < 4:
        raise ValueError(f"`{name}` must have shape (4,) or (B, 4) [x1, y1, x2, y2], got {tuple(np.shape(box))}")
    b = b[:, :4]
    if not np.all(np.isfinite(b)):
        raise ValueError(f"`{name}` has non-finite values")
    if np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1]):
        raise ValueError(f"`{name}` needs x2 > x1 and y2 > y1, got {b.tolist()}")
    return b, single


def roi_from_box(box) -> np.ndarray:
    """Square ROI from a face-detector box (3DDFA_V2 ``parse_roi_box_from_bbox``).

    ``old = (w + h) / 2``; centre = box centre moved down by ``0.14 * old``;
    side = ``int(1.58 * old)`` (truncated, as 3DDFA_V2 does).

    Args:
        box: (4,) or (B, 4) ``[x1, y1, x2, y2]`` (extra columns such as a score are ignored).

    Returns:
        float64 (4,) or (B, 4) ROI boxes ``[x1, y1, x2, y2]``. The ROI may extend past the
        image; :func:`crop_image` pads it with zeros.
    """
    b, single = _as_boxes(box, "box")
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    old = (w + h) / 2
    cx = b[:, 2] - w / 2
    cy = b[:, 3] - h / 2 + old * 0.14
    side = np.floor(old * 1.58)
    out = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    return out[0] if single else out


def roi_from_landmarks(pts, matlab_rounding: bool = False) -> np.ndarray:
    """Square ROI from landmarks (3DDFA_V2 ``parse_roi_box_from_landmark``).

    The landmark box is made square (side = its longer edge, same centre) and the ROI is the
    square with that centre whose side is the square's diagonal (sqrt(2) x the longer edge).

    Args:
        pts: (K, 2|3) or (B, K, 2|3) points (x, y[, z]); NaN rows (invisible points) are
            ignored, but each face needs at least two finite points.
        matlab_rounding: round as 3DDFA's ``benchmarkCrop.m`` did for the AFLW2000-3D crops
            (corner rounded, side added, all rounded again); default False (3DDFA_V2, floats).

    Returns:
        float64 (4,) or (B, 4) ``[x1, y1, x2, y2]``.
    """
    p = np.asarray(pts.detach().cpu() if isinstance(pts, torch.Tensor) else pts, dtype=np.float64)
    single = p.ndim == 2
    p = p[None] if single else p
    if p.ndim != 3 or p.shape[2] not in (2, 3):
        raise ValueError(f"`pts` must have shape (K, 2|3) or (B, K, 2|3), got {tuple(np.shape(pts))}")
    xy = p[..., :2]
    ok = np.isfinite(xy).all(-1)
    if np.any(ok.sum(1) < 2):
        raise ValueError("`pts`: every face needs at least two finite landmarks")
    big = np.where(ok[..., None], xy, np.nan)
    lo = np.nanmin(big, 1)
    hi = np.nanmax(big, 1)
    c = (lo + hi) / 2
    radius = np.max(hi - lo, 1) / 2
    length = math.sqrt(2) * 2 * radius
    if matlab_rounding:
        x1 = np.round(c[:, 0] - length / 2)
        y1 = np.round(c[:, 1] - length / 2)
        out = np.round(np.stack([x1, y1, x1 + length, y1 + length], 1))
    else:
        out = np.stack([c[:, 0] - length / 2, c[:, 1] - length / 2,
                        c[:, 0] + length / 2, c[:, 1] + length / 2], 1)
    if np.any(length <= 0):
        raise ValueError("`pts`: landmarks of a face all coincide (zero-size ROI)")
    return out[0] if single else out


def crop_image(img: np.ndarray, roi, size: int = CROP_SIZE, method: str = "3ddfa_v2",
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Crop ``roi`` out of ``img`` and resize it to ``size x size``; outside the image is 0.

    Args:
        img: (H, W) or (H, W, C) uint8/float image (numpy, as read by cv2: BGR).
        roi: (4,) ``[x1, y1, x2, y2]`` in image pixels; may extend past the image.
        size: output side.
        method: ``"3ddfa_v2"``: the corners are rounded to integers, the (rounded) box is
            cut out with zero padding where it leaves the image, then ``cv2.resize`` (what
            3DDFA_V2 feeds its network; sub-pixel ROI offsets are lost, up to 0.5 px).
            ``"exact"``: one ``cv2.warpAffine`` so that crop pixel ``u`` samples image
            ``x = u * (x2-x1)/size + x1`` exactly (the map of :func:`crop_to_image`).
        interpolation: cv2 interpolation flag.

    Returns:
        (size, size[, C]) array of ``img``'s dtype. The ROI is never shrunk to the image.
    """
    if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
        raise ValueError(f"`img` must be a numpy (H, W) or (H, W, C) array, got "
                         f"{type(img).__name__} {getattr(img, 'shape', None)}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"`img` is empty: shape {img.shape}")
    if int(size) != size or size <= 0:
        raise ValueError(f"`size` must be a positive integer, got {size}")
    size = int(size)
    b, single = _as_boxes(roi, "roi")
    if not single:
        raise ValueError("`roi` must be a single box (4,) for crop_image")
    x1, y1, x2, y2 = b[0]
    h, w = img.shape[:2]
    if method == "exact":
        sx, sy = (x2 - x1) / size, (y2 - y1) / size
        m = np.array([[1 / sx, 0, -x1 / sx], [0, 1 / sy, -y1 / sy]], np.float64)
        return cv2.warpAffine(img, m, (size, size), flags=interpolation,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if method != "3ddfa_v2":
        raise ValueError(f"`method` must be '3ddfa_v2' or 'exact', got {method!r}")
    sx_, sy_, ex_, ey_ = (int(round(v)) for v in (x1, y1, x2, y2))
    dh, dw = ey_ - sy_, ex_ - sx_
    if dh <= 0 or dw <= 0:
        raise ValueError(f"`roi` {b[0].tolist()} rounds to an empty box")
    out = np.zeros((dh, dw) + img.shape[2:], img.dtype)
    ix0, iy0 = max(sx_, 0), max(sy_, 0)
    ix1, iy1 = min(ex_, w), min(ey_, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - sy_:iy1 - sy_, ix0 - sx_:ix1 - sx_] = img[iy0:iy1, ix0:ix1]
    return cv2.resize(out, (size, size), interpolation=interpolation)


def _check_pts_roi(pts, roi, fn: str):
    if not isinstance(pts, (np.ndarray, torch.Tensor)):
        pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] not in (2, 3):
        raise ValueError(f"{fn}: `pts` must have shape (B, K, 2|3), got {tuple(pts.shape)}")
    if isinstance(pts, torch.Tensor):
        if not torch.is_floating_point(pts):
            pts = pts.double()
        r = torch.as_tensor(roi, dtype=pts.dtype, device=pts.device)
    else:
        pts = pts.astype(np.float64) if not np.issubdtype(pts.dtype, np.floating) else pts
        r = np.asarray(roi.detach().cpu() if isinstance(roi, torch.Tensor) else roi, dtype=pts.dtype)
    if tuple(r.shape) != (pts.shape[0], 4):
        raise ValueError(f"{fn}: `roi` must have shape (B, 4) = ({pts.shape[0]}, 4), got {tuple(r.shape)}")
    if ((r[:, 2] <= r[:, 0]) | (r[:, 3] <= r[:, 1])).any():
        raise ValueError(f"{fn}: `roi` needs x2 > x1 and y2 > y1")
    return pts, r


def crop_to_image(pts, roi, size: int = CROP_SIZE):
    """Model/crop frame (3DDFA, y up) -> image pixels (3DDFA_V2 ``similar_transform``).

    Args:
        pts: (B, K, 2|3) points as the morphable model reconstructs them from crop-frame
            parameters (numpy or torch; differentiable for torch).
        roi: (B, 4) ``[x1, y1, x2, y2]`` boxes the crops were taken from.
        size: crop side (120).

    Returns:
        Same type/shape: ``x = (X - 1) * sx + x1``, ``y = (size - Y) * sy + y1``,
        ``z = Z * sx`` with ``sx = (x2-x1)/size``, ``sy = (y2-y1)/size``.
    """
    pts, r = _check_pts_roi(pts, roi, "crop_to_image")
    sx = (r[:, 2] - r[:, 0]) / size
    sy = (r[:, 3] - r[:, 1]) / size
    cols = [(pts[..., 0] - 1) * sx[:, None] + r[:, 0:1], (size - pts[..., 1]) * sy[:, None] + r[:, 1:2]]
    if pts.shape[-1] == 3:
        cols.append(pts[..., 2] * sx[:, None])
    return torch.stack(cols, -1) if isinstance(pts, torch.Tensor) else np.stack(cols, -1)


def image_to_crop(pts, roi, size: int = CROP_SIZE):
    """Inverse of :func:`crop_to_image`: image pixels -> model/crop frame (y up).

    Args:
        pts: (B, K, 2|3) image points (0-based pixels, y down; z in image-pixel units).
        roi: (B, 4) boxes; size: crop side.

    Returns:
        ``X = (x - x1) / sx + 1``, ``Y = size - (y - y1) / sy``, ``Z = z / sx``.
    """
    pts, r = _check_pts_roi(pts, roi, "image_to_crop")
    sx = (r[:, 2] - r[:, 0]) / size
    sy = (r[:, 3] - r[:, 1]) / size
    cols = [(pts[..., 0] - r[:, 0:1]) / sx[:, None] + 1, size - (pts[..., 1] - r[:, 1:2]) / sy[:, None]]
    if pts.shape[-1] == 3:
        cols.append(pts[..., 2] / sx[:, None])
    return torch.stack(cols, -1) if isinstance(pts, torch.Tensor) else np.stack(cols, -1)
