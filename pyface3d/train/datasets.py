"""Dataset registry for training configs: ``build({"type": ..., ...}, morphable)``.

Types: ``"rendered"`` (faces rendered from the morphable model's prior with the
compiled rasterizer: a self-contained set for smoke tests, overfitting checks
and the DDP test); the real-data types are registered by :mod:`pyface3d.data`.
Every sample is a dict with ``image`` (3, 120, 120) float32 normalised as the
network expects ((x - 127.5) / 128) and ``params`` (P,) float32 (not whitened).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict

import torch
from torch.utils.data import Dataset

from .. import ops
from ..render import vertex_normals

_REGISTRY: Dict[str, Callable[..., Dataset]] = {}


def register(name: str):
    def deco(fn):
        _REGISTRY[name] = fn
        return fn

    return deco


def build(entry: Dict[str, Any], morphable) -> Dataset:
    entry = dict(entry)
    kind = entry.pop("type", None)
    if kind is None:
        raise ValueError(f"data entry {entry}: missing `type` (one of {sorted(_REGISTRY)})")
    if kind not in _REGISTRY:
        raise ValueError(f"data entry: unknown type {kind!r}; known types: {sorted(_REGISTRY)}")
    return _REGISTRY[kind](morphable=morphable, **entry)


def rotation_matrix(yaw: float, pitch: float, roll: float) -> torch.Tensor:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) (radians), float64 (3, 3)."""
    cy, sy, cp, sp, cr, sr = (math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch),
                              math.cos(roll), math.sin(roll))
    rx = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]], dtype=torch.float64)
    ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=torch.float64)
    rz = torch.tensor([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]], dtype=torch.float64)
    return rz @ ry @ rx


@register("rendered")
class RenderedFaces(Dataset):
    """Faces rendered from the morphable model's prior (Lambertian shading, random
    skin tone, light and noisy background) at 120x120, with their exact parameters.

    Sample ``i`` depends only on ``(seed, i)``. Coefficients are drawn as
    ``param_mean + coeff_scale * param_std * N(0, 1)``; yaw, pitch and roll
    uniformly in the given ranges (degrees); the face fills ``fill`` of the crop.
    ``cache=True`` keeps rendered samples in memory (small sets rendered once).
    """

    def __init__(self, morphable, n: int = 1000, seed: int = 0, size: int = 120,
                 yaw: float = 60.0, pitch: float = 20.0, roll: float = 15.0,
                 coeff_scale: float = 0.7, fill: float = 0.75, cache: bool = False):
        if n < 1:
            raise ValueError(f"rendered dataset: `n` must be >= 1, got {n}")
        mm = morphable.to("cpu")
        self.mm, self.n, self.seed, self.size = mm, int(n), int(seed), int(size)
        self.yaw, self.pitch, self.roll = yaw, pitch, roll
        self.coeff_scale, self.fill = coeff_scale, fill
        self._cache = {} if cache else None
        mean = mm.mean.view(-1, 3).double()
        self.centre = (mean.max(0).values + mean.min(0).values) / 2
        self.extent = float((mean.max(0).values - mean.min(0).values)[:2].max())

    def __len__(self) -> int:
        return self.n

    def params_of(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        u = torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1
        yaw, pitch, roll = (math.radians(self.yaw) * u[0].item(),
                            math.radians(self.pitch) * u[1].item(),
                            math.radians(self.roll) * u[2].item())
        f = self.fill * self.size / self.extent * (0.9 + 0.2 * torch.rand(1, generator=g).item())
        R = rotation_matrix(yaw, pitch, roll)
        shift = (torch.rand(2, generator=g, dtype=torch.float64) - 0.5) * 0.1 * self.size
        # model frame (y up) -> crop: x_px = x - 1, y_px = size - y; centre the face
        t = torch.zeros(3, dtype=torch.float64)
        c = f * (R @ self.centre)
        t[0] = self.size / 2 + 1 - c[0] + shift[0]
        t[1] = self.size / 2 - c[1] + shift[1]
        t[2] = -c[2]
        pose = torch.cat([f * R, t[:, None]], 1).reshape(12)
        P = self.mm.num_params
        coeff = (self.mm.param_mean[12:].double() + self.coeff_scale *
                 self.mm.param_std[12:].double() * torch.randn(P - 12, generator=g,
                                                                dtype=torch.float64))
        return torch.cat([pose, coeff]).float()

    def render(self, params: torch.Tensor, i: int) -> torch.Tensor:
        """BGR uint8-range float image (size, size, 3) of the face of ``params``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i + 17)
        v = self.mm.reconstruct(params[None])[0].double()
        img_v = torch.stack([v[:, 0] - 1, self.size - v[:, 1], v[:, 2]], 1)
        tris = self.mm.triangles
        face, bary, _ = ops.rasterize(img_v[None].float(), tris, self.size, self.size)
        # normals in the posed model frame (y up, z toward the camera); two-sided
        # lighting so the mesh's winding convention does not matter
        nrm = vertex_normals(v, tris)
        light = torch.randn(3, generator=g, dtype=torch.float64) * 0.4 + torch.tensor(
            [0.0, 0.3, 1.0], dtype=torch.float64)
        light = light / light.norm()
        shade = (nrm @ light).abs().float()[None, :, None]
        lit = ops.interpolate(shade, face, bary, tris)[0]  # (H, W, 1)
        tone = torch.tensor([0.45, 0.55, 0.75]) * (0.5 + 0.6 * torch.rand(1, generator=g))
        ambient = 0.25 + 0.2 * torch.rand(1, generator=g)
        skin = 255 * tone * (ambient + (1 - ambient) * lit)
        bg = 255 * (0.2 + 0.6 * torch.rand(3, generator=g)) * (
            0.8 + 0.2 * torch.rand(self.size, self.size, 1, generator=g))
        mask = (face[0] >= 0)[..., None]
        return torch.where(mask, skin, bg).clamp(0, 255)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(f"rendered dataset index {i} out of range [0, {self.n})")
        if self._cache is not None and i in self._cache:
            return dict(self._cache[i])
        params = self.params_of(i)
        img = self.render(params, i)
        x = (img.permute(2, 0, 1) - 127.5) / 128.0
        item = {"image": x.contiguous().float(), "params": params, "index": i}
        if self._cache is not None:
            self._cache[i] = item
        return dict(item)


def default_augmentation(morphable, flip: bool = True):
    """The training augmentation: ROI jitter, colour, blur, occlusion and (when the
    morphable model allows the parameter mirror) horizontal flip."""
    from ..data import (ColorJitter, Compose, CropJitter, GaussianBlur, HorizontalFlip,
                        Occlusion, ParamFlipper)

    ts = [CropJitter(), ColorJitter(), GaussianBlur(), Occlusion()]
    if flip:
        ts.append(HorizontalFlip(ParamFlipper.from_model(morphable)))
    return Compose(ts)


def _real(cls_name: str):
    def make(morphable, augment: bool = False, flip: bool = True, **kw):
        from .. import data

        cls = getattr(data, cls_name)
        transform = default_augmentation(morphable, flip) if augment else None
        return cls(transform=transform, **kw)

    make.__name__ = f"make_{cls_name}"
    return make


register("300w_lp")(_real("LP300WDataset"))
register("aflw2000")(_real("AFLW2000Dataset"))
register("images")(_real("ImageLabelsDataset"))
