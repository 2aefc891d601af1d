"""Overlays on BGR uint8 frames: landmarks, boxes, pose axes, and depth / PNCC / normal
renders blended onto the image."""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from .reconstructor import FaceResult, FrameResult

__all__ = ["draw_landmarks", "draw_box", "draw_pose_axes", "blend", "colorize_depth",
           "draw_frame"]

# iBUG-68 contour segments (start, end inclusive, closed)
_SEGMENTS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False),
             (31, 35, False), (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


def draw_landmarks(img: np.ndarray, landmarks: np.ndarray, color=(0, 255, 0),
                   lines: bool = True, radius: Optional[int] = None) -> np.ndarray:
    """Draw 68 landmarks (68, 2|3) in place (anti-aliased, sub-pixel); returns ``img``."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    if not np.isfinite(lm).all():
        lm = np.nan_to_num(lm, nan=-1e4, posinf=-1e4, neginf=-1e4)
    sh = 4
    p = np.round(lm * (1 << sh)).astype(np.int64).clip(-(1 << 30), 1 << 30).astype(np.int32)
    size = max(img.shape[:2])
    r = radius or max(1, size // 400)
    if lines and len(lm) == 68:
        for a, b, closed in _SEGMENTS:
            cv2.polylines(img, [p[a:b + 1].reshape(-1, 1, 2)], closed, color, 1, cv2.LINE_AA, sh)
    for q in p:
        cv2.circle(img, (int(q[0]), int(q[1])), r << sh, color, -1, cv2.LINE_AA, sh)
    return img


def draw_box(img, box, color=(255, 128, 0), label: Optional[str] = None) -> np.ndarray:
    x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
    cv2.rectangle(img, (x1, y1), (x2, y2), color, 1, cv2.LINE_AA)
    if label:
        cv2.putText(img, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1,
                    cv2.LINE_AA)
    return img


def draw_pose_axes(img, face: FaceResult, length: Optional[float] = None) -> np.ndarray:
    """Head axes at the nose tip: x (subject's left) red, y (up) green, z (toward the
    camera) blue, from the rotation in ``face.params`` (crop frame, y up -> image y down)."""
    P = face.params[:12].reshape(3, 4)
    R = P[:, :3]
    R = R / np.linalg.norm(R[0])
    o = face.landmarks[30, :2]
    L = length or 0.5 * (face.roi[2] - face.roi[0]) / 2
    for k, col in ((0, (0, 0, 255)), (1, (0, 255, 0)), (2, (255, 0, 0))):
        d = np.array([R[0, k], -R[1, k]]) * L
        e = o + d
        cv2.arrowedLine(img, (int(o[0]), int(o[1])), (int(e[0]), int(e[1])), col, 2,
                        cv2.LINE_AA, tipLength=0.15)
    return img


def colorize_depth(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Depth (H, W[, 1]) -> BGR uint8 (near = bright), normalised over the mask."""
    d = depth.reshape(depth.shape[:2]).astype(np.float64)
    out = np.zeros(d.shape + (3,), np.uint8)
    if mask.any():
        v = d[mask]
        lo, hi = v.min(), v.max()
        g = (d - lo) / max(hi - lo, 1e-9)
        g = np.clip(0.15 + 0.85 * g, 0, 1) * 255
        out[mask] = np.repeat(g[mask][:, None], 3, 1).astype(np.uint8)
    return out


def blend(img: np.ndarray, render_bgr: np.ndarray, mask: np.ndarray, alpha: float = 0.6
          ) -> np.ndarray:
    """``img`` with ``(1 - alpha) * img + alpha * render`` on ``mask`` (in place)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"argument `alpha` must be in [0, 1], got {alpha}")
    if mask.any():
        a = img[mask].astype(np.float32)
        b = render_bgr[mask].astype(np.float32)
        img[mask] = np.clip((1 - alpha) * a + alpha * b + 0.5, 0, 255).astype(np.uint8)
    return img


def draw_frame(img: np.ndarray, result: FrameResult, what: Iterable[str] = ("landmarks",),
               reconstructor=None, alpha: float = 0.6) -> np.ndarray:
    """A copy of ``img`` with the overlays ``what`` (any of "landmarks", "box", "axes",
    "depth", "pncc", "normals", "mesh" (= normals)); the renders need ``reconstructor``."""
    out = img.copy()
    what = list(what)
    bad = [w for w in what if w not in ("landmarks", "box", "axes", "depth", "pncc", "normals",
                                        "mesh")]
    if bad:
        raise ValueError(f"unknown overlay(s) {bad}; expected landmarks, box, axes, depth, "
                         "pncc, normals, mesh")
    for w in ("depth", "pncc", "normals", "mesh"):
        if w in what and result.faces:
            if reconstructor is None:
                raise ValueError(f"overlay {w!r} needs the reconstructor")
            kind = "normals" if w == "mesh" else w
            ren, m, x0, y0 = reconstructor.render_window(result.faces, img.shape[:2], kind)
            if kind == "depth":
                col = colorize_depth(ren, m)
            else:
                col = (np.clip(ren[..., ::-1], 0, 1) * 255).astype(np.uint8)  # RGB -> BGR
            hh, ww = m.shape
            blend(out[y0:y0 + hh, x0:x0 + ww], col, m, alpha)
    for f in result.faces:
        if "box" in what:
            lab = f"{f.score:.2f}" if f.track_id is None else f"#{f.track_id} {f.score:.2f}"
            draw_box(out, f.box, label=lab)
        if "landmarks" in what:
            draw_landmarks(out, f.landmarks)
        if "axes" in what:
            draw_pose_axes(out, f)
    return out
