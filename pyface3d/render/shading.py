"""Second-order spherical-harmonics (SH) lighting and Lambertian shading.

Real SH basis, 9 functions in the order (l, m) = (0,0), (1,-1), (1,0), (1,1), (2,-2), (2,-1),
(2,0), (2,1), (2,2), i.e. ``1, y, z, x, xy, yz, 3z^2-1, xz, x^2-y^2`` times their
normalisation constants, orthonormal on the unit sphere. Directions / normals are in the frame
of the vertices they come from (for image-space renders: x right, y down, z toward the camera).

Lighting ``sh_coeffs`` (B, 9, 3) are the SH coefficients ``L_lm`` of the incident radiance
(one column per RGB channel). The irradiance at normal n is (Ramamoorthi and Hanrahan 2001)
``E(n) = sum_lm A_l L_lm Y_lm(n)`` with ``A_0 = pi, A_1 = 2 pi / 3, A_2 = pi / 4``, and the
Lambertian outgoing radiance is ``albedo * E(n) / pi``. So uniform unit radiance
(``L_00 = sqrt(4 pi)``) gives ``E = pi`` and a shaded colour equal to the albedo, and a
directional light of unit irradiance from direction d (``L_lm = Y_lm(d)``, see
:func:`sh_directional`) gives ``E(n)`` = the order-2 approximation of ``max(n . d, 0)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["SH_CONSTANTS", "SH_BAND", "LAMBERT_A", "sh_basis", "sh_directional", "sh_ambient",
           "irradiance", "shade"]

_C0 = 0.5 * math.sqrt(1.0 / math.pi)
_C1 = math.sqrt(3.0 / (4.0 * math.pi))
_C2 = 0.5 * math.sqrt(15.0 / math.pi)
_C20 = 0.25 * math.sqrt(5.0 / math.pi)
_C22 = 0.25 * math.sqrt(15.0 / math.pi)
#: normalisation constant of each of the 9 basis functions
SH_CONSTANTS = (_C0, _C1, _C1, _C1, _C2, _C2, _C20, _C2, _C22)
#: band l of each of the 9 coefficients
SH_BAND = (0, 1, 1, 1, 2, 2, 2, 2, 2)
#: Lambertian (clamped cosine) convolution constants A_l, l = 0, 1, 2
LAMBERT_A = (math.pi, 2.0 * math.pi / 3.0, math.pi / 4.0)


def sh_basis(normals: Tensor) -> Tensor:
    """The 9 real SH basis functions at unit directions: (..., 3) -> (..., 9)."""
    x, y, z = normals.unbind(-1)
    return torch.stack([
        torch.full_like(x, _C0),
        _C1 * y, _C1 * z, _C1 * x,
        _C2 * x * y, _C2 * y * z, _C20 * (3 * z * z - 1), _C2 * x * z, _C22 * (x * x - y * y),
    ], -1)


def sh_directional(direction: Tensor, color: Tensor | None = None) -> Tensor:
    """SH coefficients (B, 9, 3) of a distant light of unit irradiance (times ``color``)
    arriving from unit-normalised ``direction`` (B, 3) (pointing from the surface to the
    light): ``L_lm = Y_lm(d) * color``. Shading with it gives the order-2 SH approximation of
    ``albedo * color * max(n . d, 0) / pi``."""
    d = direction / direction.norm(dim=-1, keepdim=True)
    y = sh_basis(d)  # (B, 9)
    if color is None:
        color = torch.ones(d.shape[:-1] + (3,), dtype=d.dtype, device=d.device)
    return y[..., :, None] * color[..., None, :]


def sh_ambient(color: Tensor) -> Tensor:
    """SH coefficients (B, 9, 3) of uniform radiance ``color`` (B, 3): shading gives
    ``albedo * color`` whatever the normal."""
    out = torch.zeros(color.shape[:-1] + (9, 3), dtype=color.dtype, device=color.device)
    out[..., 0, :] = color * math.sqrt(4 * math.pi)
    return out


def _lambert_weights(dtype, device) -> Tensor:
    return torch.tensor([LAMBERT_A[l] for l in SH_BAND], dtype=dtype, device=device)


def irradiance(normals: Tensor, sh_coeffs: Tensor) -> Tensor:
    """Irradiance ``E(n) = sum A_l L_lm Y_lm(n)``.

    normals (B, ..., 3) unit; sh_coeffs (B, 9, C) -> (B, ..., C).
    """
    if sh_coeffs.dim() != 3 or sh_coeffs.shape[1] != 9:
        raise ValueError(f"irradiance: sh_coeffs must be (B, 9, C), got {tuple(sh_coeffs.shape)}")
    B = sh_coeffs.shape[0]
    if normals.shape[0] != B and B != 1:
        raise ValueError("irradiance: batch sizes of normals and sh_coeffs differ")
    Y = sh_basis(normals)  # (B, ..., 9)
    w = sh_coeffs * _lambert_weights(sh_coeffs.dtype, sh_coeffs.device)[:, None]
    shp = Y.shape
    Yf = Y.reshape(shp[0], -1, 9)
    return torch.bmm(Yf, w.expand(shp[0], 9, w.shape[-1]).to(Yf.dtype)).reshape(
        shp[:-1] + (w.shape[-1],))


def shade(normals: Tensor, albedo: Tensor, sh_coeffs: Tensor) -> Tensor:
    """Lambertian shading ``albedo * E(n) / pi`` (see the module doc).

    normals (B, ..., 3) unit, albedo broadcastable to (B, ..., 3), sh_coeffs (B, 9, 3)
    -> (B, ..., 3). Not clamped (the order-2 approximation can be slightly negative).
    """
    return albedo * irradiance(normals, sh_coeffs) / math.pi
