"""Configuration of the synthetic face generator (every sampled factor's range)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = ["SynthConfig", "MODALITIES", "FORMATS"]

#: image modalities, in the order they are written
MODALITIES = ("rgb", "depth", "pncc", "normals", "albedo", "shading", "seg")
FORMATS = ("png", "jpg")
#: fields that do not change the samples (left out of the identity of a generated folder)
_NOT_IDENTITY = ("device",)
# largest irradiance / pi of one unit directional light under the order-2 SH approximation
_SH_PEAK = 1.0625
SHADING_SCALE = 16384  # 16-bit shading PNG: value = round(shading * SHADING_SCALE)


def _pair(name: str, v, lo: float, hi: float, integer: bool = False) -> Tuple[float, float]:
    try:
        a, b = v
        if any(isinstance(x, (bool, str, bytes)) for x in (a, b)):
            raise TypeError
        if integer and (int(a) != a or int(b) != b):
            raise ValueError
        a, b = (int(a), int(b)) if integer else (float(a), float(b))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"SynthConfig: `{name}` must be a (low, high) pair of "
                         f"{'integers' if integer else 'numbers'}, got "
                         f"{v!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and lo <= a <= b <= hi):
        raise ValueError(f"SynthConfig: `{name}` must satisfy {lo} <= low <= high <= {hi}, "
                         f"got ({a}, {b})")
    return a, b


def _int(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or \
            int(v) != v or not lo <= v <= hi:
        raise ValueError(f"SynthConfig: `{name}` must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _num(name: str, v, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or \
            not lo <= v <= hi:
        raise ValueError(f"SynthConfig: `{name}` must be a number in [{lo}, {hi}], got {v!r}")
    return float(v)


def _prob(name: str, p) -> float:
    p = _num(name, p, 0.0, 1.0)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"SynthConfig: `{name}` must be a probability in [0, 1], got {p}")
    return p


@dataclass(frozen=True)
class SynthConfig:
    """What the generator samples (see docs/synth.md for every distribution).

    Angles in degrees; ranges are ``(low, high)`` for uniform draws. Sample ``i`` depends
    only on ``(seed, i)`` and the fields below except ``device``.
    """
    size: int = 120                                   # output side (px)
    seed: int = 0
    yaw: Tuple[float, float] = (-90.0, 90.0)          # U(low, high); + turns toward image left
    pitch: Tuple[float, float] = (-30.0, 30.0)
    roll: Tuple[float, float] = (-20.0, 20.0)
    id_scale: float = 1.0                             # identity: mean + id_scale * std * N(0, 1)
    exp_scale: float = 1.0                            # expression: mean + exp_scale * std * N(0, 1)
    roi_scale: Tuple[float, float] = (0.9, 1.1)       # image side / landmark ROI side
    roi_shift: float = 0.05                           # ROI centre shift, U(-s, s) x ROI side
    tone: Tuple[float, float] = (1.0, 10.0)           # Monk skin tone, U(low, high)
    ambient: Tuple[float, float] = (0.15, 0.5)        # ambient radiance
    light: Tuple[float, float] = (0.4, 0.9)           # key light intensity
    backgrounds: Optional[str] = None                 # folder of images (else procedural only)
    background_image_p: float = 0.8                   # P(image background) when a folder is given
    occlusion_p: float = 0.35
    max_occluders: int = 2
    blur_p: float = 0.25
    blur_sigma: Tuple[float, float] = (0.3, 1.5)      # px at 120 px (scaled with size)
    motion_blur_p: float = 0.1
    noise_p: float = 0.5
    noise_sigma: Tuple[float, float] = (1.0, 8.0)     # 0..255 units
    jpeg_p: float = 0.3
    jpeg_quality: Tuple[int, int] = (30, 90)
    modalities: Tuple[str, ...] = MODALITIES
    format: str = "png"                               # rgb file format
    jpg_quality: int = 95                             # quality of rgb files with format "jpg"
    device: str = "cpu"

    def __post_init__(self):
        s = object.__setattr__
        s(self, "size", _int("size", self.size, 16, 2048))
        s(self, "seed", _int("seed", self.seed, 0, 2 ** 63 - 1))
        s(self, "yaw", _pair("yaw", self.yaw, -90.0, 90.0))
        s(self, "pitch", _pair("pitch", self.pitch, -90.0, 90.0))
        s(self, "roll", _pair("roll", self.roll, -180.0, 180.0))
        for n in ("id_scale", "exp_scale"):
            s(self, n, _num(n, getattr(self, n), 0.0, 10.0))
        s(self, "roi_scale", _pair("roi_scale", self.roi_scale, 0.3, 4.0))
        s(self, "roi_shift", _num("roi_shift", self.roi_shift, 0.0, 0.5))
        s(self, "tone", _pair("tone", self.tone, 1.0, 10.0))
        s(self, "ambient", _pair("ambient", self.ambient, 0.0, 4.0))
        s(self, "light", _pair("light", self.light, 0.0, 4.0))
        peak = self.ambient[1] + 1.5 * self.light[1] * _SH_PEAK
        if peak >= 65535 / SHADING_SCALE:
            raise ValueError(f"SynthConfig: `ambient` high + 1.5 x 1.0625 x `light` high must "
                             f"stay below {65535 / SHADING_SCALE:.3f} (the 16-bit shading "
                             f"range), got {peak:.3f}")
        if self.backgrounds is not None:
            if not isinstance(self.backgrounds, (str, os.PathLike)):
                raise ValueError(f"SynthConfig: `backgrounds` must be a folder path or None, "
                                 f"got {self.backgrounds!r}")
            s(self, "backgrounds", os.path.abspath(os.fspath(self.backgrounds)))
        for n in ("background_image_p", "occlusion_p", "blur_p", "motion_blur_p", "noise_p",
                  "jpeg_p"):
            s(self, n, _prob(n, getattr(self, n)))
        if self.blur_p + self.motion_blur_p > 1.0 + 1e-12:
            raise ValueError(f"SynthConfig: `blur_p` + `motion_blur_p` must be <= 1 (one blur "
                             f"at most), got {self.blur_p} + {self.motion_blur_p}")
        s(self, "max_occluders", _int("max_occluders", self.max_occluders, 1, 16))
        s(self, "blur_sigma", _pair("blur_sigma", self.blur_sigma, 0.01, 50.0))
        s(self, "noise_sigma", _pair("noise_sigma", self.noise_sigma, 0.0, 255.0))
        s(self, "jpeg_quality", _pair("jpeg_quality", self.jpeg_quality, 1, 100, integer=True))
        mods = (self.modalities,) if isinstance(self.modalities, str) else tuple(self.modalities)
        bad = [m for m in mods if m not in MODALITIES]
        if bad or not mods:
            raise ValueError(f"SynthConfig: `modalities` must be a non-empty subset of "
                             f"{list(MODALITIES)}, got {list(mods)}")
        if len(set(mods)) != len(mods):
            raise ValueError(f"SynthConfig: `modalities` lists a modality twice: {list(mods)}")
        s(self, "modalities", tuple(m for m in MODALITIES if m in mods))
        if self.format not in FORMATS:
            raise ValueError(f"SynthConfig: `format` must be one of {FORMATS}, got "
                             f"{self.format!r}")
        s(self, "jpg_quality", _int("jpg_quality", self.jpg_quality, 1, 100))
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"SynthConfig: `device` must be 'cpu' or 'cuda[:k]', got "
                             f"{self.device!r}")

    # depth PNG encoding: value = round((Z + depth_offset) * depth_scale), 0 = background
    @property
    def depth_offset(self) -> int:
        """Added to the depth (crop pixels) before quantisation; bounds |Z| for any pose."""
        return int(math.ceil(2.0 * self.size / self.roi_scale[0]))

    @property
    def depth_scale(self) -> int:
        """Quantisation steps per pixel of depth in the 16-bit depth PNG."""
        return max(1, 65535 // (2 * self.depth_offset + 1))

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def identity(self) -> Dict[str, Any]:
        """The fields that determine the samples (everything but ``device``)."""
        d = self.to_dict()
        for k in _NOT_IDENTITY:
            d.pop(k)
        return d

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SynthConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"SynthConfig: unknown fields {unknown}; known: {sorted(known)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
