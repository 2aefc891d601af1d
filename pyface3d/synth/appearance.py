"""Skin, hair, eye and lip colours (per-vertex albedo) and spherical-harmonics lighting.

Colours are display (sRGB-like) values in [0, 1]; the renderer multiplies albedo by the
Lambertian SH shading in the same space (no gamma), like the rest of :mod:`pyface3d.render`.

**Skin tone.** ``tone`` is a continuous position on the Monk Skin Tone scale (MST, 1 = very
light .. 10 = very dark; Ellis Monk, Google, CC BY 4.0), sampled uniformly in the configured
range (default the whole scale). The base colour interpolates the ten MST swatches linearly
in sRGB, times an overall albedo factor 0.85 (swatches are photographs of lit skin), times
an undertone ``(1 + u, 1, 1 - u)`` with ``u ~ U(-0.04, 0.04)`` (cool .. warm).

**Variation over the face** (low frequency): the luminance is multiplied by
``1 + a * f(x)`` with ``f`` a sum of 4 random plane waves over the mean shape (wavelength 0.5
to 2 face widths, unit peak), ``a ~ U(0.03, 0.10)``; redness (red up, blue down) by
``0.04 * g(x)`` (another such field); cheeks redder by ``U(0, 0.35)`` of the cheek weight.

**Regions**: lips (skin x ``(0.82, 0.52, 0.55)`` x ``U(0.75, 1.0)``, blended by the lips
weight); brows (hair colour, density ``U(0.55, 0.95)``); stubble (hair colour, with
probability 0.2, ``U(0.1, 0.35)``); upper lash line (near black, ``U(0.4, 0.8)``); eyes:
sclera ``(0.86, 0.83, 0.78) x U(0.8, 1.0)``, iris (radius 0.38 of the eye half-width, gaze
offset ``U(-0.3, 0.3)`` x ``U(-0.15, 0.15)``) in one of brown / dark brown / hazel / green /
blue / grey (blue, green, grey and hazel only for tone <= 5, brown otherwise), pupil (radius
0.14) near black; mouth interior from ``(0.45, 0.18, 0.18)`` at the lips to
``(0.06, 0.02, 0.02)`` deep inside. Hair colour: black, dark brown, brown, auburn, blond or
grey (blond and auburn only for tone <= 5).

**Lighting** (image frame: x right, y down, z toward the camera): ambient radiance
``U(ambient)`` (default 0.15 .. 0.5) times a tint, plus 1 (p 0.5) or 2 directional lights: the
key light from azimuth ``U(-75, 75)`` deg (0 = from the camera, positive = from the image
right) and elevation ``U(-20, 60)`` deg (positive = from above) with intensity ``U(light)``
(default 0.4 .. 0.9), the fill light from azimuth ``U(-90, 90)``, elevation ``U(-30, 45)``,
``U(0.15, 0.5)`` x the key. Each light has a colour temperature tint between warm
``(1, 0.85, 0.7)`` and cool ``(0.8, 0.9, 1)`` (``t ~ U(0, 1)``), normalised to a maximum
channel of 1. A directional light of intensity k shades albedo by ``k max(n.d, 0)`` (its SH
coefficients are ``pi k Y(d) tint``; :func:`pyface3d.render.sh_directional`).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Tuple

import numpy as np

from .regions import FaceTopology

__all__ = ["MST_SWATCHES", "skin_color", "sample_albedo", "sample_lighting", "sh_of_lights"]

#: Monk Skin Tone scale swatches 1..10 (sRGB, 0-255).
MST_SWATCHES = np.array([
    [246, 237, 228], [243, 231, 219], [247, 234, 208], [234, 218, 186], [215, 189, 150],
    [160, 126, 86], [130, 92, 67], [96, 65, 52], [58, 49, 42], [41, 36, 32]], np.float64) / 255.0
ALBEDO_FACTOR = 0.85

HAIR = {"black": (0.035, 0.03, 0.028), "dark_brown": (0.09, 0.06, 0.045),
        "brown": (0.22, 0.14, 0.08), "auburn": (0.35, 0.15, 0.07),
        "blond": (0.62, 0.5, 0.32), "grey": (0.5, 0.49, 0.47)}
IRIS = {"brown": (0.33, 0.19, 0.09), "dark_brown": (0.13, 0.08, 0.05),
        "hazel": (0.45, 0.36, 0.18), "green": (0.3, 0.42, 0.26), "blue": (0.3, 0.45, 0.62),
        "grey": (0.45, 0.48, 0.5)}
_WARM, _COOL = np.array([1.0, 0.85, 0.7]), np.array([0.8, 0.9, 1.0])


def skin_color(tone: float) -> np.ndarray:
    """Base skin albedo (3,) for a continuous MST tone in [1, 10] (before the undertone)."""
    if not 1.0 <= tone <= 10.0:
        raise ValueError(f"skin_color: `tone` must be in [1, 10] (Monk scale), got {tone}")
    x = tone - 1.0
    i = min(int(math.floor(x)), 8)
    f = x - i
    return ALBEDO_FACTOR * ((1 - f) * MST_SWATCHES[i] + f * MST_SWATCHES[i + 1])


def _waves(rng: np.random.Generator, pts: np.ndarray, width: float, k: int = 4) -> np.ndarray:
    """A smooth random field over points (M, 3): sum of k plane waves, peak |f| <= 1."""
    d = rng.normal(size=(k, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    lam = rng.uniform(0.5, 2.0, k) * width
    ph = rng.uniform(0, 2 * math.pi, k)
    amp = rng.uniform(0.5, 1.0, k)
    arg = pts @ (2 * math.pi * d / lam[:, None]).T.astype(np.float32) + ph.astype(np.float32)
    return np.cos(arg) @ (amp / amp.sum()).astype(np.float32)


def _pick(rng: np.random.Generator, names, probs):
    p = np.asarray(probs, np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_albedo(rng: np.random.Generator, top: FaceTopology,
                  tone_range: Tuple[float, float]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Per-vertex albedo (N + X, 3) float32 in [0, 1] and the sampled factors."""
    tone = float(rng.uniform(*tone_range))
    under = float(rng.uniform(-0.04, 0.04))
    base = skin_color(tone) * np.array([1 + under, 1.0, 1 - under])
    light_skin = tone <= 5.0
    hair = _pick(rng, list(HAIR), [3, 3, 2, 1, 1.5, 1] if light_skin else [6, 3, 1, 0, 0, 1])
    iris = _pick(rng, list(IRIS), [3, 1, 1.5, 1, 2, 0.5] if light_skin else [4, 4, 0, 0, 0, 0])
    mean = top.mean_f32
    width = float(np.ptp(mean[:top.n_model, 0])) or 1.0
    lum_amp = float(rng.uniform(0.03, 0.10))
    lum = 1.0 + lum_amp * _waves(rng, mean, width)
    red = 0.04 * _waves(rng, mean, width)
    blush = float(rng.uniform(0.0, 0.35))
    col = (base.astype(np.float32)[None] * lum[:, None]) * (
        1 + red[:, None] * np.array([1.0, 0.0, -1.0], np.float32))
    hair_rgb = np.array(HAIR[hair])
    stubble = float(rng.uniform(0.1, 0.35)) if rng.random() < 0.2 else 0.0
    lip_dark = float(rng.uniform(0.75, 1.0))
    lips = base * np.array([0.82, 0.52, 0.55]) * lip_dark
    density = float(rng.uniform(0.55, 0.95))
    lash = float(rng.uniform(0.4, 0.8))
    # regions, each on the vertices where its weight is > 0
    ix, w = top.support("cheeks")
    col[ix] *= 1 + blush * w[:, None] * np.array([0.12, -0.1, -0.08], np.float32)
    if stubble > 0:
        ix, w = top.support("stubble")
        col[ix] = _mix(col[ix], hair_rgb, stubble * w)
    for name, target, amount in (("lips", lips, 1.0), ("brows", hair_rgb, density),
                                 ("lashes", np.array([0.04, 0.035, 0.03]), lash)):
        ix, w = top.support(name)
        col[ix] = _mix(col[ix], target, amount * w)
    # eyes: sclera, iris, pupil by the distance from the (gaze-shifted) iris centre
    gaze = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15)])
    sclera = np.array([0.86, 0.83, 0.78]) * float(rng.uniform(0.8, 1.0))
    eye = top.eye_index
    r = np.linalg.norm(top.eye_uv[eye] - gaze[None], axis=1)
    ecol = _mix(np.broadcast_to(sclera, (r.shape[0], 3)), np.array(IRIS[iris]),
                1.0 - _step(r, 0.38, 0.06))
    ecol = _mix(ecol, np.array([0.02, 0.02, 0.02]), 1.0 - _step(r, 0.14, 0.04))
    col[eye] = ecol
    mouth = top.mouth_index
    md = top.mouth_depth[mouth][:, None]
    col[mouth] = (1 - md) * np.array([0.45, 0.18, 0.18]) + md * np.array([0.06, 0.02, 0.02])
    col = np.clip(col, 0.0, 1.0, out=col)
    factors = {"tone": round(tone, 4), "undertone": round(under, 4), "hair": hair,
               "iris": iris, "variation": round(lum_amp, 4), "blush": round(blush, 4),
               "stubble": round(stubble, 4), "brow_density": round(density, 4),
               "gaze": [round(float(g), 4) for g in gaze]}
    return col, factors


def _mix(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    t = np.asarray(t, np.float64)
    if t.ndim == 1:
        t = t[:, None]
    return a * (1 - t) + b * t


def _step(x: np.ndarray, edge: float, width: float) -> np.ndarray:
    """0 below edge - width/2 .. 1 above edge + width/2 (smoothstep)."""
    y = np.clip((x - edge + width / 2) / width, 0, 1)
    return y * y * (3 - 2 * y)


def _tint(rng: np.random.Generator) -> np.ndarray:
    t = float(rng.uniform(0, 1))
    c = (1 - t) * _WARM + t * _COOL
    return c / c.max()


def _direction(az_deg: float, el_deg: float) -> np.ndarray:
    """Unit vector toward a light at azimuth (to the image right) and elevation (up),
    in the image frame (x right, y down, z toward the camera)."""
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.sin(az) * math.cos(el), -math.sin(el), math.cos(az) * math.cos(el)])


def sample_lighting(rng: np.random.Generator, ambient: Tuple[float, float],
                    light: Tuple[float, float]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """SH coefficients (9, 3) float64 (image frame) and the sampled factors."""
    amb = float(rng.uniform(*ambient))
    amb_tint = _tint(rng)
    lights = []
    key = float(rng.uniform(*light))
    n = 1 if rng.random() < 0.5 else 2
    az, el = float(rng.uniform(-75, 75)), float(rng.uniform(-20, 60))
    lights.append({"azimuth": az, "elevation": el, "intensity": key, "tint": _tint(rng)})
    if n == 2:
        az2, el2 = float(rng.uniform(-90, 90)), float(rng.uniform(-30, 45))
        lights.append({"azimuth": az2, "elevation": el2,
                       "intensity": key * float(rng.uniform(0.15, 0.5)), "tint": _tint(rng)})
    sh = sh_of_lights(amb * amb_tint, lights)
    factors = {"ambient": [round(float(c), 4) for c in amb * amb_tint],
               "lights": [{"azimuth": round(li["azimuth"], 3),
                           "elevation": round(li["elevation"], 3),
                           "direction": [round(float(c), 5) for c in
                                         _direction(li["azimuth"], li["elevation"])],
                           "color": [round(float(c), 4) for c in li["intensity"] * li["tint"]]}
                          for li in lights]}
    return sh, factors


def sh_of_lights(ambient_rgb: np.ndarray, lights) -> np.ndarray:
    """(9, 3) SH radiance coefficients of an ambient colour plus directional lights
    (dicts with azimuth, elevation in degrees, intensity, tint (3,)): see the module doc."""
    from ..render.shading import SH_CONSTANTS

    sh = np.zeros((9, 3))
    sh[0] = np.asarray(ambient_rgb, np.float64) * math.sqrt(4 * math.pi)
    for li in lights:
        x, y, z = _direction(li["azimuth"], li["elevation"])
        basis = np.array([1.0, y, z, x, x * y, y * z, 3 * z * z - 1, x * z, x * x - y * y])
        basis = basis * np.array(SH_CONSTANTS)
        sh += math.pi * basis[:, None] * (li["intensity"] * np.asarray(li["tint"]))[None]
    return sh
