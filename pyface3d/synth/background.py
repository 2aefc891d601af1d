"""Backgrounds, occluders and image degradations (numpy / cv2, RGB float32 in [0, 1]).

Procedural backgrounds (one kind drawn uniformly):

* ``noise``: value noise at several scales (random grids of 2..4 to ~size/4 cells resized
  bicubically, weights falling with frequency), mapped between two random colours;
* ``gradient``: a linear ramp between two random colours at a random angle, plus weak noise;
* ``stripes``: a square or sine wave (period 4..size/2 px) at a random angle between two
  colours, plus weak noise;
* ``checks``: a rotated checkerboard (cell 4..size/3 px) of two colours, plus weak noise;
* ``blobs``: 3..12 random filled ellipses over a random colour, blurred a little.

With a folder of images (``--backgrounds DIR``) a background is, with probability
``background_image_p``, a random square crop (side ``U(0.3, 1)`` x the shorter image side,
random position, mirrored with p 0.5) of a random image, resized to the output size; files
are listed once (sorted; .jpg .jpeg .png .bmp .webp .tif .tiff), so a sample depends on the
folder's content.

Occluders (``occlusion_p``, 1..``max_occluders`` shapes): an ``ellipse``, a rotated ``bar``
(long thin rectangle), or a random convex ``polygon`` (5..8 corners); size ``U(0.15, 0.5)``
x the face box's longer side (bars: length ``U(0.5, 1.2)``, thickness ``U(0.06, 0.18)``);
centred uniformly inside the face's landmark box, so each covers part of the face; filled
with a solid colour, a procedural texture, or a skin-like colour (p 1/3 each).

Degradations of the final RGB image, in this order: Gaussian blur (``blur_p``, sigma
``U(blur_sigma)`` px at 120 px, scaled with the size) or motion blur (``motion_blur_p``,
length ``U(3, 9)`` px at 120, random angle); Gaussian noise (``noise_p``, sigma
``U(noise_sigma)`` in 0..255 units); JPEG re-encoding (``jpeg_p``, quality
``U(jpeg_quality)``) with OpenCV's encoder.
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Tuple

import cv2
import numpy as np

__all__ = ["BACKGROUND_KINDS", "procedural_background", "image_background", "list_images",
           "draw_occluders", "degrade"]

BACKGROUND_KINDS = ("noise", "gradient", "stripes", "checks", "blobs")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _color(rng: np.random.Generator) -> np.ndarray:
    """A random colour: random hue, saturation and value (HSV), as RGB."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0, 0.8), rng.uniform(0.05, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _value_noise(rng: np.random.Generator, size: int, scales: int = 4) -> np.ndarray:
    """Multi-scale value noise in [0, 1], (size, size)."""
    out = np.zeros((size, size), np.float32)
    total = 0.0
    cells = int(rng.integers(2, 5))
    for k in range(scales):
        n = min(cells * 2 ** k, max(size // 4, 2))
        g = rng.random((n + 1, n + 1)).astype(np.float32)
        up = cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
        w = 0.55 ** k
        out += w * up
        total += w
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _coords(size: int, angle: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return x * math.cos(angle) + y * math.sin(angle)


def _two(rng, t: np.ndarray) -> np.ndarray:
    a, b = _color(rng), _color(rng)
    return (a[None, None] * (1 - t[..., None]) + b[None, None] * t[..., None]).astype(np.float32)


def procedural_background(rng: np.random.Generator, size: int,
                          kind: Optional[str] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """(size, size, 3) float32 RGB in [0, 1] and its description."""
    kind = kind or BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))]
    angle = float(rng.uniform(0, math.pi))
    info: Dict[str, Any] = {"kind": kind}
    if kind == "noise":
        img = _two(rng, _value_noise(rng, size))
    elif kind == "gradient":
        c = _coords(size, angle)
        t = (c - c.min()) / max(float(np.ptp(c)), 1e-6)
        img = _two(rng, t)
    elif kind == "stripes":
        period = float(rng.uniform(4, max(size / 2, 5)))
        s = np.sin(2 * math.pi * _coords(size, angle) / period)
        t = (s > 0).astype(np.float32) if rng.random() < 0.5 else 0.5 + 0.5 * s
        img = _two(rng, t)
        info["period"] = round(period, 3)
    elif kind == "checks":
        cell = float(rng.uniform(4, max(size / 3, 5)))
        u = _coords(size, angle) / cell
        v = _coords(size, angle + math.pi / 2) / cell
        t = ((np.floor(u) + np.floor(v)) % 2).astype(np.float32)
        img = _two(rng, t)
        info["cell"] = round(cell, 3)
    elif kind == "blobs":
        img = np.empty((size, size, 3), np.float32)
        img[:] = _color(rng)
        for _ in range(int(rng.integers(3, 13))):
            c = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            ax = (int(rng.integers(2, size // 2 + 3)), int(rng.integers(2, size // 2 + 3)))
            cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360,
                        [float(x) for x in _color(rng)], -1)
        img = cv2.GaussianBlur(img, (0, 0), max(size / 200, 0.5))
    else:
        raise ValueError(f"procedural_background: unknown kind {kind!r}; expected one of "
                         f"{BACKGROUND_KINDS}")
    if kind in ("gradient", "stripes", "checks"):
        amp = float(rng.uniform(0.0, 0.08))
        img = img + amp * (_value_noise(rng, size)[..., None] - 0.5)
    info["angle"] = round(math.degrees(angle), 3)
    return np.clip(img, 0, 1).astype(np.float32), info


def list_images(folder: str) -> List[str]:
    """Image files directly inside ``folder`` (sorted names); an error if there are none."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"synth: argument `backgrounds` {folder!r} is not a folder")
    files = sorted(f for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(
                       os.path.join(folder, f)))
    if not files:
        raise FileNotFoundError(f"synth: argument `backgrounds` {folder!r} holds no image "
                                f"({', '.join(IMAGE_EXTENSIONS)})")
    return files


def image_background(rng: np.random.Generator, folder: str, files: List[str],
                     size: int) -> Tuple[np.ndarray, Dict[str, Any]]:
    """A random square crop of a random image of ``files`` (names in ``folder``)."""
    name = files[int(rng.integers(len(files)))]
    path = os.path.join(folder, name)
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"synth: cannot read background image {path}")
    h, w = img.shape[:2]
    side = max(1, int(round(min(h, w) * rng.uniform(0.3, 1.0))))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    crop = img[y0:y0 + side, x0:x0 + side]
    flip = bool(rng.random() < 0.5)
    if flip:
        crop = crop[:, ::-1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)
    rgb = crop[..., ::-1].astype(np.float32) / 255.0
    return rgb, {"kind": "image", "file": name, "crop": [x0, y0, side], "flip": flip}


def draw_occluders(rng: np.random.Generator, img: np.ndarray, box: np.ndarray,
                   max_count: int, skin: np.ndarray) -> Tuple[np.ndarray, np.ndarray, list]:
    """Paint 1..max_count occluders over ``img`` (S, S, 3) float32, centred inside ``box``
    ``[x1, y1, x2, y2]`` (the face's landmark box). Returns the image, the occluder mask
    (S, S) bool and their descriptions."""
    S = img.shape[0]
    out = img.copy()
    mask = np.zeros((S, S), np.uint8)
    x1, y1, x2, y2 = (float(v) for v in box)
    face = max(x2 - x1, y2 - y1, 1.0)
    shapes = []
    for _ in range(int(rng.integers(1, max_count + 1))):
        kind = ("ellipse", "bar", "polygon")[int(rng.integers(3))]
        cx, cy = float(rng.uniform(x1, x2)), float(rng.uniform(y1, y2))
        ang = float(rng.uniform(0, 180))
        m = np.zeros((S, S), np.uint8)
        shift = 4  # sub-pixel precision for cv2 drawing
        k = 1 << shift
        if kind == "ellipse":
            a = face * float(rng.uniform(0.15, 0.5)) / 2
            b = a * float(rng.uniform(0.4, 1.0))
            cv2.ellipse(m, (int(round(cx * k)), int(round(cy * k))),
                        (int(round(a * k)), int(round(b * k))), ang, 0, 360, 1, -1,
                        cv2.LINE_8, shift)
            desc = {"kind": kind, "centre": [cx, cy], "axes": [a, b], "angle": ang}
        elif kind == "bar":
            length = face * float(rng.uniform(0.5, 1.2))
            thick = face * float(rng.uniform(0.06, 0.18))
            pts = cv2.boxPoints(((cx, cy), (length, thick), ang))
            cv2.fillPoly(m, [np.round(pts * k).astype(np.int32)], 1, cv2.LINE_8, shift)
            desc = {"kind": kind, "centre": [cx, cy], "length": length, "thickness": thick,
                    "angle": ang}
        else:
            r = face * float(rng.uniform(0.15, 0.5)) / 2
            n = int(rng.integers(5, 9))
            th = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = r * rng.uniform(0.6, 1.0, n)
            pts = np.stack([cx + rad * np.cos(th), cy + rad * np.sin(th)], 1)
            cv2.fillPoly(m, [np.round(pts * k).astype(np.int32)], 1, cv2.LINE_8, shift)
            desc = {"kind": kind, "centre": [cx, cy], "radius": r, "corners": n}
        fill = ("solid", "texture", "skin")[int(rng.integers(3))]
        if fill == "solid":
            tex = np.broadcast_to(_color(rng).astype(np.float32), (S, S, 3))
        elif fill == "texture":
            tex, _ = procedural_background(rng, S)
        else:
            tex = np.broadcast_to((skin * rng.uniform(0.6, 1.1)).astype(np.float32), (S, S, 3))
        on = m.astype(bool)
        out[on] = tex[on]
        mask |= m
        desc = {k2: ([round(float(x), 3) for x in v] if isinstance(v, list) else
                     (round(float(v), 3) if isinstance(v, float) else v))
                for k2, v in desc.items()}
        desc["fill"] = fill
        shapes.append(desc)
    return out, mask.astype(bool), shapes


def degrade(rng: np.random.Generator, img: np.ndarray, cfg) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Blur / noise / JPEG of an (S, S, 3) float32 RGB image -> uint8 RGB and the factors."""
    S = img.shape[0]
    k = S / 120.0
    info: Dict[str, Any] = {}
    u_blur, u_noise, u_jpeg = rng.random(3)
    if u_blur < cfg.blur_p:
        sigma = float(rng.uniform(*cfg.blur_sigma)) * k
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        info["blur"] = {"kind": "gaussian", "sigma": round(sigma, 4)}
    elif u_blur < cfg.blur_p + cfg.motion_blur_p:
        length = float(rng.uniform(3, 9)) * k
        ang = float(rng.uniform(0, 180))
        n = int(math.ceil(length)) | 1
        ker = np.zeros((n, n), np.float32)
        c = n // 2
        dx = math.cos(math.radians(ang)) * (length - 1) / 2
        dy = math.sin(math.radians(ang)) * (length - 1) / 2
        sh = 4
        cv2.line(ker, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
                 (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 1.0, 1,
                 cv2.LINE_AA, sh)
        ker /= ker.sum()
        img = cv2.filter2D(img, -1, ker, borderType=cv2.BORDER_REFLECT)
        info["blur"] = {"kind": "motion", "length": round(length, 4), "angle": round(ang, 3)}
    out = img * 255.0
    if u_noise < cfg.noise_p:
        sigma = float(rng.uniform(*cfg.noise_sigma))
        out = out + sigma * rng.standard_normal(out.shape).astype(np.float32)
        info["noise"] = round(sigma, 4)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if u_jpeg < cfg.jpeg_p:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(out[..., ::-1]),
                               [cv2.IMWRITE_JPEG_QUALITY, q])
        if not ok:
            raise RuntimeError("synth: OpenCV could not JPEG-encode an image")
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
        info["jpeg"] = q
    return np.ascontiguousarray(out), info
