"""The synthetic face sampler: :class:`FaceSynthesizer` ``.sample(i)`` -> :class:`SynthSample`.

One sample, given ``(seed, i)``:

1. shape: identity and expression ``param_mean + scale * param_std * N(0, 1)``;
2. pose: yaw, pitch, roll uniform in the configured ranges (3DDFA convention,
   ``R = Rz(roll) Ry(-yaw) Rx(pitch)``, :func:`pyface3d.morphable.rotation_from_euler`);
3. camera: the square ROI of the rotated 68 landmarks (3DDFA_V2's
   ``parse_roi_box_from_landmark``), its side scaled by ``U(roi_scale)`` and its centre
   shifted by ``U(-roi_shift, roi_shift)`` x side, is mapped onto the ``size x size`` image
   (so faces are framed like 3DDFA's 120x120 training crops); depth 0 at the landmark
   centroid. The 62 (12 + I + E) parameters are exact 3DDFA crop parameters of the image:
   ``V = model.reconstruct(params)``, image ``x = X - 1``, ``y = size - Y``, ``z = Z``;
4. appearance (:mod:`.appearance`), lighting, rendering: one rasterization of the
   augmented mesh (:mod:`.regions`) into the face's box, one interpolation of albedo, NCC
   and vertex normals; shading ``E(n) / pi`` per pixel, face colour ``albedo * shading``;
5. background, occluders, blur / noise / JPEG (:mod:`.background`);
6. 68 landmarks (image x, y, z) with visibility from the Z-buffer (and occluders).

Each step draws from its own stream ``numpy.random.default_rng([seed, i, step])``, so e.g.
changing the background folder leaves identities, poses and lights unchanged.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from .. import ops
from ..data.roi import roi_from_landmarks
from ..morphable import resolve
from ..morphable.params import rotation_from_euler
from ..render.renderer import face_roi, rasterize, render_attributes
from ..render.shading import irradiance
from . import appearance, background
from .config import SynthConfig
from .regions import OCCLUDER, FaceTopology, build_topology, sparse_csr

__all__ = ["FaceSynthesizer", "SynthSample", "visibility_tolerance", "STREAMS"]

#: random stream ids: numpy.random.default_rng([seed, index, STREAMS[name]])
STREAMS = {"shape": 0, "pose": 1, "camera": 2, "albedo": 3, "light": 4, "background": 5,
           "occluders": 6, "degrade": 7}


@dataclass
class SynthSample:
    """One sample (numpy arrays; images are ``size x size``, RGB channel order).

    Geometry modalities show the face alone (before occluders); ``rgb`` and ``seg`` show
    the final image. Image-space points: x right, y down (pixel centres at integers), z
    toward the camera (larger = nearer), in pixels.
    """
    index: int
    name: str
    rgb: np.ndarray            # (S, S, 3) uint8, the final image
    mask: np.ndarray           # (S, S) bool, face coverage (before occluders)
    depth: np.ndarray          # (S, S) float32 z of the nearest surface, 0 where ~mask
    pncc: np.ndarray           # (S, S, 3) float32 NCC (x, y, z) in [0, 1]
    normals: np.ndarray        # (S, S, 3) float32 unit normals (image frame, toward the camera)
    albedo: np.ndarray         # (S, S, 3) float32 in [0, 1]
    shading: np.ndarray        # (S, S, 3) float32 >= 0, Lambertian SH shading E(n) / pi
    seg: np.ndarray            # (S, S) uint8 region ids (regions.SEG_LABELS)
    occluder: np.ndarray       # (S, S) bool
    landmarks: np.ndarray      # (68, 3) float32 image x, y, z
    visible: np.ndarray        # (68,) bool: self_visible and not under an occluder
    self_visible: np.ndarray   # (68,) bool: in the image and passing the Z-buffer test
    params: np.ndarray         # (P,) float32 3DDFA crop parameters of the image
    sh: np.ndarray             # (9, 3) float32 SH radiance coefficients (image frame)
    factors: Dict[str, Any] = field(default_factory=dict)


def visibility_tolerance(vertices: np.ndarray) -> float:
    """Depth tolerance of the landmark visibility test for image-space vertices (N, 3):
    1 % of the mesh's z extent + 1 % of its x/y extent (as
    :func:`pyface3d.render.vertex_visibility`)."""
    ext = vertices.max(0) - vertices.min(0)
    return float(max(0.01 * ext[2] + 0.01 * max(ext[0], ext[1]), 1e-6))


class FaceSynthesizer:
    """Samples synthetic faces from a morphable model.

    Args:
        model: a :class:`~pyface3d.morphable.MorphableModel`, a path to our ``.npz``, or
            ``"ict"`` (default; :func:`pyface3d.morphable.resolve`).
        config: a :class:`SynthConfig` (default: ``SynthConfig()``).
    """

    def __init__(self, model: Union[str, Any] = "ict", config: Optional[SynthConfig] = None):
        if config is None:
            config = SynthConfig()
        if not isinstance(config, SynthConfig):
            raise TypeError(f"FaceSynthesizer: argument `config` must be a SynthConfig, got "
                            f"{type(config).__name__}")
        self.config = config
        self.device = torch.device(config.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("FaceSynthesizer: config.device is 'cuda' but CUDA is not "
                               "available")
        mm = resolve(model) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") \
            else model
        self.model = mm.to(self.device, torch.float32)
        self.topology: FaceTopology = build_topology(mm)
        top = self.topology
        dev = self.device
        self.triangles = torch.as_tensor(top.triangles, dtype=torch.int32, device=dev)
        self.ncc = ops.ncc_code(torch.as_tensor(top.mean, dtype=torch.float32)).to(dev)
        self.labels = torch.as_tensor(top.triangle_label, dtype=torch.uint8, device=dev)
        # vertex normals = incidence (N', F') @ face normals: one sparse product
        F = top.triangles.shape[0]
        self._incidence = sparse_csr(top.triangles.T.reshape(-1), np.tile(np.arange(F), 3),
                                     np.ones(3 * F), (top.n_vertices, F)).to(dev)
        self._tri_long = torch.as_tensor(top.triangles, dtype=torch.long, device=dev)
        self._normal_sign = self._outward_sign()
        p_mean = mm.param_mean.detach().cpu().double().numpy()
        p_std = mm.param_std.detach().cpu().double().numpy()
        self._coef_mean, self._coef_std = p_mean[12:], p_std[12:]
        lm = mm.landmarks68.detach().cpu().long().numpy()
        self._lm_mean = mm.mean.detach().cpu().double().reshape(-1, 3).numpy()[lm]
        I, E = mm.id_basis.shape[1], mm.exp_basis.shape[1]
        idb = mm.id_basis.detach().cpu().double().reshape(-1, 3, I).numpy()
        exb = mm.exp_basis.detach().cpu().double().reshape(-1, 3, E).numpy()
        self._lm_basis = np.concatenate([idb[lm], exb[lm]], 2)  # (68, 3, I + E)
        self.I, self.E = I, E
        self._bg_files = (background.list_images(config.backgrounds)
                          if config.backgrounds is not None else [])

    # ------------------------------------------------------------------ helpers
    def _outward_sign(self) -> float:
        """+1 if the winding gives normals toward the viewer on the front of the mean face in
        the image frame (y down), else -1 (so shading and normals face the camera)."""
        v = torch.as_tensor(self.topology.mean, dtype=torch.float32, device=self.device)
        v = v * torch.tensor([1.0, -1.0, 1.0], device=self.device)
        n = self._vertex_normals(v[None], 1.0)[0]
        lm = self.model.landmarks68
        front = lm[[27, 28, 29, 30, 33]]
        return 1.0 if float(n[front, 2].sum()) >= 0 else -1.0

    def _vertex_normals(self, v: torch.Tensor, sign: float) -> torch.Tensor:
        t = self._tri_long
        a, b, c = v[0, t[:, 0]], v[0, t[:, 1]], v[0, t[:, 2]]
        fn = torch.cross(b - a, c - a, dim=-1)
        n = self._incidence @ fn
        n = n * (sign / n.norm(dim=1, keepdim=True).clamp_min(1e-20))
        return n[None]

    @staticmethod
    def name_of(index: int) -> str:
        """File stem of sample ``index``."""
        return f"{index:06d}"

    def rng(self, index: int, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, int(index), STREAMS[stream]])

    # ------------------------------------------------------------------ parameters
    def sample_params(self, index: int):
        """The 3DDFA parameters (P,) float32 of sample ``index`` and its pose factors."""
        cfg = self.config
        S = cfg.size
        r = self.rng(index, "shape")
        z = r.standard_normal(self.I + self.E)
        scale = np.concatenate([np.full(self.I, cfg.id_scale), np.full(self.E, cfg.exp_scale)])
        coeff = self._coef_mean + scale * self._coef_std * z
        r = self.rng(index, "pose")
        yaw, pitch, roll = (float(r.uniform(*rg)) for rg in (cfg.yaw, cfg.pitch, cfg.roll))
        R = rotation_from_euler(torch.tensor([yaw], dtype=torch.float64), pitch, roll,
                                degrees=True)[0].numpy()
        s_lm = self._lm_mean + self._lm_basis @ coeff                   # (68, 3) unposed
        rot = s_lm @ R.T
        xy = np.stack([rot[:, 0], -rot[:, 1]], 1)                       # image-like, y down
        x1, y1, x2, y2 = roi_from_landmarks(xy)
        side0 = x2 - x1
        r = self.rng(index, "camera")
        k = float(r.uniform(*cfg.roi_scale))
        dx, dy = (float(v) for v in r.uniform(-cfg.roi_shift, cfg.roi_shift, 2))
        cx, cy = (x1 + x2) / 2 + dx * side0, (y1 + y2) / 2 + dy * side0
        side = k * side0
        f = S / side
        bx, by = cx - side / 2, cy - side / 2
        t = np.array([1.0 - f * bx, S + f * by, -f * float(rot[:, 2].mean())])
        pose = np.concatenate([f * R, t[:, None]], 1)
        params = np.concatenate([pose.reshape(12), coeff]).astype(np.float32)
        factors = {"yaw": round(yaw, 4), "pitch": round(pitch, 4), "roll": round(roll, 4),
                   "roi_scale": round(k, 5), "roi_shift": [round(dx, 5), round(dy, 5)],
                   "scale": float(f), "id_norm": round(float(np.linalg.norm(z[:self.I])), 4),
                   "exp_norm": round(float(np.linalg.norm(z[self.I:])), 4)}
        return params, factors

    # ------------------------------------------------------------------ sample
    @torch.no_grad()
    def sample(self, index: int) -> SynthSample:
        """Sample ``index`` (an int >= 0); deterministic for ``(config.seed, index)``."""
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise ValueError(f"FaceSynthesizer.sample: argument `index` must be an integer "
                             f">= 0, got {index!r}")
        index = int(index)
        cfg = self.config
        S = cfg.size
        dev = self.device
        top = self.topology
        params, factors = self.sample_params(index)
        p = torch.from_numpy(params)[None].to(dev)
        V = self.model.reconstruct(p)                                   # (1, N, 3) y up
        A = p[:, :12].reshape(1, 3, 4)[:, :, :3]
        Vall = top.extend(V, A)
        iv = torch.stack([Vall[..., 0] - 1.0, S - Vall[..., 1], Vall[..., 2]], -1)
        x0, y0, h, w = face_roi(iv, S, S)
        fr = rasterize(iv, self.triangles, roi=(x0, y0, h, w), backend="compiled")

        albedo_v, f_alb = appearance.sample_albedo(self.rng(index, "albedo"), top, cfg.tone)
        sh, f_light = appearance.sample_lighting(self.rng(index, "light"), cfg.ambient,
                                                 cfg.light)
        nv = self._vertex_normals(iv, self._normal_sign)
        attrs = torch.cat([torch.from_numpy(albedo_v).to(dev)[None], self.ncc[None], nv], -1)
        pix = render_attributes(attrs.contiguous(), fr, self.triangles)[0]
        m = fr.mask[0]
        n = pix[..., 6:9]
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        n = torch.where(n[..., 2:3] < 0, -n, n) * m[..., None]
        sh_t = torch.as_tensor(sh, dtype=torch.float32, device=dev)
        shading = (irradiance(n[None], sh_t[None])[0] / math.pi).clamp_min(0) * m[..., None]
        alb = pix[..., 0:3]
        face = alb * shading
        seg_roi = torch.where(m, self.labels[fr.face_index[0].clamp_min(0).long()],
                              torch.zeros((), dtype=torch.uint8, device=dev))

        def full(t: torch.Tensor, c: int, dtype=np.float32) -> np.ndarray:
            out = np.zeros((S, S, c) if c else (S, S), dtype)
            out[y0:y0 + h, x0:x0 + w] = t.cpu().numpy()
            return out

        mask = full(m, 0, bool)
        depth = full(fr.depth[0], 0)
        pncc = full(pix[..., 3:6], 3)
        normals = full(n, 3)
        albedo = full(alb, 3)
        shade = full(shading, 3)
        seg = full(seg_roi, 0, np.uint8)
        face_rgb = full(face, 3)

        # landmarks and their Z-buffer visibility
        ivn = iv[0, :top.n_model].cpu().numpy().astype(np.float64)
        lm = ivn[self.model.landmarks68.cpu().numpy()]
        tol = visibility_tolerance(ivn)
        jj, ii = np.rint(lm[:, 0]).astype(np.int64), np.rint(lm[:, 1]).astype(np.int64)
        inside = (ii >= 0) & (ii < S) & (jj >= 0) & (jj < S)
        ic, jc = np.clip(ii, 0, S - 1), np.clip(jj, 0, S - 1)
        self_vis = inside & mask[ic, jc] & (lm[:, 2] >= depth[ic, jc] - tol)

        # background, occluders, degradations
        rb = self.rng(index, "background")
        if self._bg_files and rb.random() < cfg.background_image_p:
            bg, f_bg = background.image_background(rb, cfg.backgrounds, self._bg_files, S)
        else:
            bg, f_bg = background.procedural_background(rb, S)
        img = np.where(mask[..., None], face_rgb, bg)
        ro = self.rng(index, "occluders")
        occ = np.zeros((S, S), bool)
        f_occ = []
        if ro.random() < cfg.occlusion_p:
            lx1, ly1 = lm[:, :2].min(0)
            lx2, ly2 = lm[:, :2].max(0)
            skin = appearance.skin_color(f_alb["tone"])
            img, occ, f_occ = background.draw_occluders(
                ro, img.astype(np.float32), np.array([lx1, ly1, lx2, ly2]), cfg.max_occluders,
                skin)
        rgb, f_deg = background.degrade(self.rng(index, "degrade"), img.astype(np.float32), cfg)
        seg[occ] = OCCLUDER
        visible = self_vis & ~occ[ic, jc]

        factors.update(f_alb)
        factors.update(f_light)
        factors["background"] = f_bg
        factors["occluders"] = f_occ
        factors.update(f_deg)
        factors["visible_landmarks"] = int(visible.sum())
        return SynthSample(
            index=index, name=self.name_of(index), rgb=rgb, mask=mask, depth=depth, pncc=pncc,
            normals=normals, albedo=albedo, shading=shade, seg=seg, occluder=occ,
            landmarks=lm.astype(np.float32), visible=visible, self_visible=self_vis,
            params=params, sh=sh.astype(np.float32), factors=factors)
