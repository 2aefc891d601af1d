"""Seeded augmentation of face samples.

A *sample* is a dict. Before cropping (``sample["frame"] == "image"``):

* ``image``: (H, W, 3) uint8 BGR (as ``cv2.imread`` returns it);
* ``roi``: (4,) float64 ``[x1, y1, x2, y2]``;
* optional ``landmarks``: (K, 2|3) float64 0-based image pixels (NaN rows = unknown);
* optional ``pose_image``: (3, 4) image affine (see :mod:`pyface3d.data.convert`) and
  ``coeffs``: (I + E,) identity + expression coefficients;
* anything else (``name``, ``yaw``, ...) is carried along.

:class:`Crop` turns it into the crop frame (``frame == "crop"``): ``image`` (size, size, 3),
``landmarks`` in 0-based crop pixels (y down, z divided by the x scale), ``params``
(12 + I + E,) crop-frame 3DDFA parameters. :class:`ToNetworkInput` makes the tensors.

Every transform is ``t(sample, rng) -> sample`` with a ``numpy.random.Generator`` and has a
``stage``: ``"image"`` (before the crop: :class:`CropJitter`) or ``"crop"`` (after it).
Datasets seed ``rng`` from ``(seed, epoch, index)``, so augmentation is reproducible and the
same in any number of workers.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np
import torch

from .convert import image_affine_to_params
from .flip import ParamFlipper, flip_landmarks_pixels
from .landmarks import IBUG68_FLIP
from .roi import CROP_SIZE, crop_image

__all__ = ["Compose", "Crop", "CropJitter", "ColorJitter", "GaussianBlur", "Occlusion", "HorizontalFlip",
           "ToNetworkInput", "normalize_image"]


def _need(sample: dict, frame: str, who: str) -> None:
    if sample.get("frame") != frame:
        raise ValueError(f"{who} works on {frame}-frame samples, got frame={sample.get('frame')!r}")


def _check_range(name: str, lo_hi, lo: float = -np.inf, hi: float = np.inf):
    a, b = (float(v) for v in lo_hi)
    if not (lo <= a <= b <= hi):
        raise ValueError(f"`{name}` must be (low, high) with {lo} <= low <= high <= {hi}, got {lo_hi}")
    return a, b


def _check_prob(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"`p` must be in [0, 1], got {p}")
    return float(p)


class Compose:
    """Apply transforms in order: ``Compose([...])(sample, rng)``."""
    stage = "mixed"

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample


class Crop:
    """Image frame -> crop frame (3DDFA_V2 crop; ``method`` as :func:`crop_image`)."""
    stage = "crop_op"

    def __init__(self, size: int = CROP_SIZE, method: str = "3ddfa_v2"):
        self.size, self.method = int(size), method

    def __call__(self, sample: dict, rng=None) -> dict:
        _need(sample, "image", "Crop")
        s = dict(sample)
        roi = np.asarray(s["roi"], np.float64)
        s["image"] = crop_image(s["image"], roi, self.size, self.method)
        sx, sy = (roi[2] - roi[0]) / self.size, (roi[3] - roi[1]) / self.size
        if s.get("landmarks") is not None:
            lm = np.array(s["landmarks"], np.float64)
            s["landmarks_image"] = lm.copy()
            lm[:, 0] = (lm[:, 0] - roi[0]) / sx
            lm[:, 1] = (lm[:, 1] - roi[1]) / sy
            if lm.shape[1] > 2:
                lm[:, 2] = lm[:, 2] / sx
            s["landmarks"] = lm
        if s.get("pose_image") is not None:
            s["params"] = np.concatenate([image_affine_to_params(s["pose_image"], roi, self.size),
                                          np.asarray(s["coeffs"], np.float64)])
        s.pop("pose_image", None)
        s.pop("coeffs", None)
        s["frame"] = "crop"
        return s


class CropJitter:
    """Random ROI scale and shift (before cropping): side x U(scale), centre + U(-shift, shift) x side."""
    stage = "image"

    def __init__(self, scale=(0.9, 1.1), shift: float = 0.05):
        self.scale = _check_range("scale", scale, 1e-3)
        if shift < 0:
            raise ValueError(f"`shift` must be >= 0, got {shift}")
        self.shift = float(shift)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        _need(sample, "image", "CropJitter")
        x1, y1, x2, y2 = np.asarray(sample["roi"], np.float64)
        w, h = x2 - x1, y2 - y1
        k = rng.uniform(*self.scale)
        dx, dy = rng.uniform(-self.shift, self.shift, 2)
        cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
        s = dict(sample)
        s["roi"] = np.array([cx - k * w / 2, cy - k * h / 2, cx + k * w / 2, cy + k * h / 2])
        return s


class ColorJitter:
    """Random brightness (additive, x255), contrast and saturation factors on the crop."""
    stage = "crop"

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, p: float = 1.0):
        for n, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= v < 1:
                raise ValueError(f"`{n}` must be in [0, 1), got {v}")
        self.b, self.c, self.s, self.p = brightness, contrast, saturation, _check_prob(p)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        _need(sample, "crop", "ColorJitter")
        if rng.random() >= self.p:
            return sample
        img = sample["image"].astype(np.float32)
        img = img + 255.0 * rng.uniform(-self.b, self.b)
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - self.c, 1 + self.c) + mean
        gray = img.mean(2, keepdims=True)
        img = (img - gray) * rng.uniform(1 - self.s, 1 + self.s) + gray
        s = dict(sample)
        s["image"] = np.clip(np.rint(img), 0, 255).astype(np.uint8)  # pixel range, not labels
        return s


class GaussianBlur:
    """With probability ``p``, blur the crop with sigma ~ U(sigma)."""
    stage = "crop"

    def __init__(self, sigma=(0.1, 2.0), p: float = 0.3):
        self.sigma, self.p = _check_range("sigma", sigma, 1e-6), _check_prob(p)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        _need(sample, "crop", "GaussianBlur")
        if rng.random() >= self.p:
            return sample
        s = dict(sample)
        s["image"] = cv2.GaussianBlur(sample["image"], (0, 0), rng.uniform(*self.sigma))
        return s


class Occlusion:
    """With probability ``p``, paint 1..``max_patches`` random rectangles (sides a fraction
    U(size) of the crop side) with a random colour or uniform noise."""
    stage = "crop"

    def __init__(self, size=(0.1, 0.4), max_patches: int = 2, p: float = 0.3):
        self.size, self.p = _check_range("size", size, 0.0, 1.0), _check_prob(p)
        if max_patches < 1:
            raise ValueError(f"`max_patches` must be >= 1, got {max_patches}")
        self.max_patches = int(max_patches)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        _need(sample, "crop", "Occlusion")
        if rng.random() >= self.p:
            return sample
        img = sample["image"].copy()
        h, w = img.shape[:2]
        boxes = []
        for _ in range(int(rng.integers(1, self.max_patches + 1))):
            bw = max(1, int(round(rng.uniform(*self.size) * w)))
            bh = max(1, int(round(rng.uniform(*self.size) * h)))
            x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            if rng.random() < 0.5:
                img[y0:y0 + bh, x0:x0 + bw] = rng.integers(0, 256, 3, dtype=np.uint8)
            else:
                img[y0:y0 + bh, x0:x0 + bw] = rng.integers(0, 256, (bh, bw) + img.shape[2:], dtype=np.uint8)
            boxes.append([x0, y0, x0 + bw, y0 + bh])
        s = dict(sample)
        s["image"] = img
        s["occlusion_boxes"] = np.array(boxes, np.int64)
        return s


class HorizontalFlip:
    """With probability ``p``, mirror the crop: image columns reversed, landmarks mirrored
    (``u -> size - 1 - u``) and re-indexed with ``perm`` (iBUG 68), parameters through
    ``flipper`` (a :class:`ParamFlipper`, required when the sample has ``params``), ``yaw``
    negated, ``flipped`` toggled. The sample's ``roi`` then no longer maps the crop back to
    the original image, and ``landmarks_image`` stays the unflipped original-image
    annotation (use ``flipped`` to tell)."""
    stage = "crop"

    def __init__(self, flipper: Optional[ParamFlipper] = None, p: float = 0.5, perm=IBUG68_FLIP):
        self.flipper, self.p, self.perm = flipper, _check_prob(p), perm

    def __call__(self, sample: dict, rng: Optional[np.random.Generator] = None) -> dict:
        _need(sample, "crop", "HorizontalFlip")
        if rng is not None and rng.random() >= self.p:
            return sample
        s = dict(sample)
        img = sample["image"]
        size = img.shape[1]
        s["image"] = np.ascontiguousarray(img[:, ::-1])
        if s.get("landmarks") is not None:
            lm = np.asarray(s["landmarks"])
            perm = self.perm if self.perm is not None and len(self.perm) == len(lm) else None
            if perm is None and self.perm is not None:
                raise ValueError(f"HorizontalFlip: `perm` has {len(self.perm)} entries but the sample "
                                 f"has {len(lm)} landmarks; pass perm=None to keep their order")
            s["landmarks"] = flip_landmarks_pixels(lm, size, perm)
        if s.get("params") is not None:
            if self.flipper is None:
                raise ValueError("HorizontalFlip: the sample has `params`; pass a ParamFlipper")
            s["params"] = self.flipper(s["params"], size)
        if "yaw" in s:
            s["yaw"] = -float(s["yaw"])
        s["flipped"] = not s.get("flipped", False)
        return s


def normalize_image(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 ``(x - 127.5) / 128`` (channel order unchanged)."""
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"`img` must be a (H, W, 3) array, got {getattr(img, 'shape', type(img))}")
    return (torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() - 127.5) / 128.0


class ToNetworkInput:
    """Crop-frame sample -> tensors: ``image`` (3, S, S) float32 BGR ``(x-127.5)/128``;
    ``landmarks`` (K, 2|3) float32 in the **model/crop frame** (``X = u + 1``, ``Y = S - v``,
    y up: directly comparable with the reconstruction of ``params``); ``landmarks_image``
    (K, 2|3) image pixels where known; ``params`` float32; ``roi`` float32 (4,); ``yaw``
    float (degrees, NaN if unknown); ``flipped`` bool; other keys unchanged."""
    stage = "final"

    def __call__(self, sample: dict, rng=None) -> dict:
        _need(sample, "crop", "ToNetworkInput")
        out = {k: v for k, v in sample.items() if k not in ("image", "frame", "occlusion_boxes")}
        size = sample["image"].shape[0]
        out["image"] = normalize_image(sample["image"])
        if sample.get("landmarks") is not None:
            lm = np.array(sample["landmarks"], np.float64)
            lm[:, 0] = lm[:, 0] + 1
            lm[:, 1] = size - lm[:, 1]
            out["landmarks"] = torch.from_numpy(lm).float()
        else:
            out.pop("landmarks", None)
        for k in ("landmarks_image", "params", "roi"):
            if sample.get(k) is not None:
                out[k] = torch.as_tensor(np.asarray(sample[k], np.float64)).float()
            else:
                out.pop(k, None)
        out["yaw"] = float(sample.get("yaw", float("nan")))
        out["flipped"] = bool(sample.get("flipped", False))
        return out
