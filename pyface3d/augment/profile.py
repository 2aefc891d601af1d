"""3D face profiling: new views of a real face image at other yaw angles (the "face
profiling" that made 300W-LP, Zhu et al. 2016, "Face Alignment Across Large Poses: A 3D
Solution"; the thesis' augmentation of 300W, a view every 15 degrees, 11 per image).

Pipeline for one image (docs/augment.md has the details and pictures):

1. Fit the morphable model to the 68 landmarks (:func:`pyface3d.fitting.fit_landmarks`) in
   the crop frame of ``roi = roi_from_landmarks(landmarks)`` (3DDFA_V2, y up); or take given
   ``params`` + ``roi``.
2. Texture: every vertex takes as texture coordinate its own projected position in the
   image (the image is the texture). Inner holes of the mesh (eyes, mouth) are closed by fans.
   Anchors are always drawn behind the face (a background layer).
3. Image meshing: anchors on the face silhouette, on rings outside it and on the image
   border, with depths blending from the silhouette's depth to the head centre's, Delaunay
   triangulated (:func:`pyface3d.augment.mesh.build_anchor_mesh`).
4. Rotation by ``d`` degrees of yaw: ``Q = Rz(roll) Ry(-d) Rz(-roll)`` in the model frame
   (so the 3DDFA Euler yaw changes by exactly ``d``, pitch and roll are kept, as 300W-LP
   changes ``Pose_Para``'s yaw), about the model's origin (the head centre for ICT/BFM):
   the new pose is ``[Q fR | t]``. Anchors rotate with the head by their weight (1 next to
   the face, 0 on the image border, which stays put).
5. Render with the compiled rasterizer, interpolating each pixel's source image position,
   and ``cv2.remap`` the image; pixels not covered, seen through a hole, mapped outside the
   image or hidden in the source view (self-occlusion) are filled with ``cv2.inpaint``.
6. Labels of the view: the 68 model landmarks projected (the 3D landmark convention), their
   visibility from the Z-buffer, and the parameters re-expressed in the crop frame of the
   view's own ROI (``roi_from_landmarks`` of the new landmarks), so that
   ``crop_to_image(model.reconstruct(params), roi)`` gives the landmarks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import cv2
import numpy as np
import torch

from .. import ops
from ..data.convert import image_affine_to_params, params_to_image_affine
from ..data.roi import crop_to_image, image_to_crop, roi_from_landmarks, CROP_SIZE
from ..morphable.params import euler_angles, rotation_from_euler
from ..render.renderer import face_roi
from .mesh import ClosedMesh, build_anchor_mesh

__all__ = ["ProfileConfig", "ProfiledView", "FaceProfiler", "profile_face", "yaw_schedule",
           "yaw_rotation", "landmark_visibility", "mirror_map", "front_triangles"]

MODES = ("outward", "symmetric")
PIVOTS = ("centroid", "origin", "landmarks")


@dataclass(frozen=True)
class ProfileConfig:
    """Settings of the image meshing, rendering and fitting (lengths are in units of the
    face size ``S``, the longer side of the fitted landmarks' box in pixels).

    Attributes:
        rings: radii of the anchor rings outside the face silhouette.
        hold, release: ring weight (how rigidly it turns with the head, and how far its
            depth stays near the silhouette's) is 1 up to ``hold``, falls smoothly to 0 at
            ``release``; the image border has weight 0 (static).
        spacing: anchor spacing along the silhouette.
        border_anchors: anchors per image side.
        depth_offset: the silhouette anchors sit this far behind the face surface.
        occlusion_tol: a rendered point counts as hidden in the source view when it is more
            than this behind the source depth buffer there.
        fill_occluded: do not copy colours to points hidden in the source view (True) - they
            are taken from the mirror-symmetric point when ``mirror_fill`` and that one was
            visible, else inpainted - or copy whatever the source image shows there (False:
            the occluder's colours, e.g. a second nose on a revealed cheek).
        mirror_fill: use the texture of the mirror-symmetric model vertex for face points
            hidden in the source (a revealed cheek takes the other cheek's colours). Needs a
            mirror-symmetric mesh (the vertex map is found on the mean shape; vertices
            without a mirror within a quarter edge are not mirrored).
        inpaint_radius: ``cv2.inpaint`` radius (Telea) in pixels.
        pivot: the point the head turns about: ``"centroid"`` (default; the mean of the fitted
            mesh's vertices, as 300W-LP keeps its mesh centroid in place), ``"origin"`` (the
            model's origin: the head centre for ICT and BFM, i.e. turning about the neck;
            the face then moves sideways) or ``"landmarks"`` (the 68 landmarks' centroid:
            the face turns in place).
        visibility_tol: a landmark is visible when its depth is at least the smallest depth
            of the 3x3 pixels around it minus this (grazing points on the silhouette count
            as visible).
        face_cut: ``(front, below)`` (default ``(0.06, 0.1)``, about where BFM's face ends on
            ICT): only the front of the model is textured from the image, as 300W-LP's face
            mesh; ears, the side of the head and the neck are carried by the anchors. The
            triangles kept have all three vertices (mean shape) at least ``front * w`` in
            front of the jaw corners (landmarks 0 and 16) and at most ``below * w`` below the
            chin (landmark 8), ``w`` the landmarks' width; then the largest connected piece.
            None: the whole model mesh (ICT's ears and neck turn as 3D shapes, but take the
            colours of whatever the image shows there - hair, background - which is worse
            unless the ears are visible).
        fit_iters, prior_id, prior_exp: :func:`pyface3d.fitting.fit_landmarks` options.
    """
    rings: tuple = (0.04, 0.12, 0.25, 0.45, 0.7)
    hold: float = 0.12
    release: float = 0.6
    spacing: float = 1.0 / 32
    border_anchors: int = 8
    depth_offset: float = 0.01
    occlusion_tol: float = 0.03
    fill_occluded: bool = True
    mirror_fill: bool = True
    inpaint_radius: int = 3
    face_cut: Optional[tuple] = (0.06, 0.1)
    pivot: str = "centroid"
    visibility_tol: float = 0.01
    fit_iters: int = 10
    prior_id: float = 1.0
    prior_exp: float = 1.0

    def __post_init__(self):
        r = tuple(float(x) for x in self.rings)
        if not r or any(not math.isfinite(x) or x <= 0 for x in r) or list(r) != sorted(set(r)):
            raise ValueError(f"ProfileConfig: `rings` must be increasing positive radii, got {self.rings}")
        object.__setattr__(self, "rings", r)
        if not 0 <= self.hold < self.release:
            raise ValueError(f"ProfileConfig: need 0 <= hold < release, got {self.hold}, {self.release}")
        if self.face_cut is not None:
            fc = tuple(float(x) for x in self.face_cut)
            if len(fc) != 2 or not all(math.isfinite(x) for x in fc):
                raise ValueError(f"ProfileConfig: `face_cut` must be None or (front, below), got {self.face_cut}")
            object.__setattr__(self, "face_cut", fc)
        if self.pivot not in PIVOTS:
            raise ValueError(f"ProfileConfig: `pivot` must be one of {PIVOTS}, got {self.pivot!r}")
        for k in ("spacing", "depth_offset", "occlusion_tol", "visibility_tol"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"ProfileConfig: `{k}` must be > 0, got {v}")
        if int(self.border_anchors) < 1 or int(self.inpaint_radius) < 1 or int(self.fit_iters) < 1:
            raise ValueError("ProfileConfig: `border_anchors`, `inpaint_radius` and `fit_iters` must be >= 1")
        if self.prior_id < 0 or self.prior_exp < 0:
            raise ValueError("ProfileConfig: priors must be >= 0")


@dataclass
class ProfiledView:
    """One rendered view.

    Attributes:
        image: (H, W[, C]) uint8, the input's size and channels.
        landmarks: (68, 2) float64 image pixels (0-based), the model's landmarks projected.
        visibility: (68,) bool, from the Z-buffer of the whole model mesh in this view (the
            face occludes itself; the anchors are drawn behind the face): see
            :func:`landmark_visibility`.
        params: (12 + I + E,) float64 crop-frame parameters for ``roi`` (de-whitened).
        roi: (4,) float64 ``[x1, y1, x2, y2]`` = ``roi_from_landmarks(landmarks)``.
        yaw, pitch, roll: degrees, 3DDFA_V2 Euler angles of ``params``' pose.
        yaw_delta: degrees of yaw added to the fitted pose.
        filled: (H, W) bool, the pixels filled by inpainting.
        mirrored: (H, W) bool, the pixels textured from the mirror-symmetric face point.
        depth: (H, W) float32 Z-buffer of the view (face and anchors; larger is nearer).
    """
    image: np.ndarray
    landmarks: np.ndarray
    visibility: np.ndarray
    params: np.ndarray
    roi: np.ndarray
    yaw: float
    pitch: float
    roll: float
    yaw_delta: float
    filled: np.ndarray = field(repr=False)
    mirrored: np.ndarray = field(repr=False)
    depth: np.ndarray = field(repr=False)


def yaw_schedule(yaw0: float, views: int = 11, step: float = 15.0, mode: str = "outward",
                 max_yaw: float = 90.0) -> List[float]:
    """The yaw changes (degrees) of the views of a face whose fitted yaw is ``yaw0``.

    Candidates are the multiples ``k * step`` (k integer, 0 included) with
    ``|yaw0 + k * step| <= max_yaw``. The "turned side" is the sign of ``yaw0`` (+ for 0).

    * ``"outward"`` (default, 300W-LP-like): 0, then the turned side nearest first
      (+-step, +-2 step, ... toward +-max_yaw), then the other side nearest first. A frontal
      face with 11 views at 15 degrees: 0, 15, 30, ..., 90, -15, -30, -45, -60.
    * ``"symmetric"``: by |change|, the turned side first at equal |change|:
      0, +-15, -+15, +-30, ... (11 views: every change in [-75, 75] for a frontal face).

    The first ``views`` candidates in that order are returned (the 0 view, the input's own
    pose re-rendered, is always first). Raises ValueError when fewer than ``views`` fit.
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")
    if int(views) != views or views < 1:
        raise ValueError(f"`views` must be a positive integer, got {views}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"`yaw_step` must be > 0 degrees, got {step}")
    if not (math.isfinite(max_yaw) and 0 < max_yaw <= 90):
        raise ValueError(f"`max_yaw` must be in (0, 90] degrees, got {max_yaw}")
    if not math.isfinite(yaw0):
        raise ValueError(f"`yaw0` must be finite, got {yaw0}")
    side = 1.0 if yaw0 >= 0 else -1.0
    eps = 1e-9
    cands = []
    kmax = int(math.ceil(2 * max_yaw / step)) + 1
    for k in range(-kmax, kmax + 1):
        d = k * step
        if abs(yaw0 + d) <= max_yaw + eps or k == 0:
            cands.append(d)
    if mode == "outward":
        key = lambda d: (d != 0, d * side < 0, abs(d))  # noqa: E731
    else:
        key = lambda d: (abs(d), d * side < 0)  # noqa: E731
    cands.sort(key=key)
    if len(cands) < views:
        raise ValueError(f"only {len(cands)} views fit with `yaw_step` {step} and `max_yaw` "
                         f"{max_yaw} for a face at yaw {yaw0:.1f}; asked for `views` = {views}")
    return [float(d) for d in cands[:int(views)]]


def yaw_rotation(delta_deg: float, roll: float) -> np.ndarray:
    """``Q = Rz(roll) Ry(-delta) Rz(-roll)`` (model frame, y up; ``roll`` in radians): left
    multiplied onto ``R = Rz(roll) Ry(-yaw) Rx(pitch)`` it adds ``delta`` to the Euler yaw and
    keeps pitch and roll."""
    ry = rotation_from_euler(torch.tensor([math.radians(delta_deg)], dtype=torch.float64), 0.0, 0.0)[0]
    rz = rotation_from_euler(torch.zeros(1, dtype=torch.float64), 0.0, float(roll))[0]
    return (rz @ ry @ rz.T).numpy()


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"argument `image` must be a numpy array (H, W[, C]) uint8, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"argument `image` must be uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"argument `image` must have shape (H, W), (H, W, 1) or (H, W, 3), got {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"argument `image` is too small: {image.shape}")
    return image


def _check_landmarks(landmarks) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"argument `landmarks68` must have shape (68, 2) (x, y image pixels, "
                         f"0-based, iBUG order), got {lm.shape}")
    ok = np.isfinite(lm).all(1)
    if ok.sum() < 4:
        raise ValueError(f"argument `landmarks68` has {int(ok.sum())} finite points; at least 4 "
                         "are needed to fit (NaN rows mark missing points)")
    return lm


class FaceProfiler:
    """Face profiling with one morphable model (keeps the model and its closed mesh).

    Args:
        model: a MorphableModel, a path to our ``.npz``, or ``"ict"`` (default).
        config: :class:`ProfileConfig` (default settings when None).
    """

    def __init__(self, model="ict", config: Optional[ProfileConfig] = None):
        from ..morphable import resolve
        mm = resolve(model)
        if getattr(mm, "triangles", None) is None or mm.triangles.numel() == 0:
            raise ValueError("argument `model`: the morphable model has no triangles (face "
                             "profiling renders its mesh)")
        self.model = mm.to("cpu", torch.float64)
        self.config = config if config is not None else ProfileConfig()
        if not isinstance(self.config, ProfileConfig):
            raise TypeError(f"argument `config` must be a ProfileConfig, got {type(self.config).__name__}")
        tri = self.model.triangles.numpy().astype(np.int64)
        if self.config.face_cut is not None:
            tri = front_triangles(self.model.mean.view(-1, 3).numpy(), tri,
                                  self.model.landmarks68.numpy(), *self.config.face_cut)
        self.mesh = ClosedMesh.from_triangles(tri, self.model.N)
        self._tri = torch.from_numpy(self.mesh.triangles)
        # the whole mesh decides landmark visibility (the jaw landmarks lie outside the cut)
        self.full_mesh = (self.mesh if self.config.face_cut is None else
                          ClosedMesh.from_triangles(self.model.triangles.numpy(), self.model.N))
        self.lm_ids = self.model.landmarks68.numpy().astype(np.int64)
        self.mirror = mirror_map(self.mesh.extend(self.model.mean.view(-1, 3).numpy()),
                                 self.mesh.triangles, self.lm_ids)

    # ------------------------------------------------------------------ fitting / geometry
    def fit(self, landmarks68) -> tuple:
        """Fit the model to (68, 2) image landmarks (NaN rows ignored).

        Returns:
            ``(params (P,) float64, roi (4,) float64)``: crop-frame parameters for
            ``roi = roi_from_landmarks(landmarks68)``.
        """
        from ..fitting import fit_landmarks
        lm = _check_landmarks(landmarks68)
        roi = roi_from_landmarks(lm)
        ok = np.isfinite(lm).all(1)
        lmc = image_to_crop(np.where(ok[:, None], lm, 0.0)[None], roi[None])[0]
        c = self.config
        p = fit_landmarks(self.model, torch.from_numpy(lmc)[None],
                          visibility=torch.from_numpy(ok.astype(np.float64))[None],
                          n_iter=int(c.fit_iters), prior_id=c.prior_id, prior_exp=c.prior_exp)
        return p[0].numpy().astype(np.float64), roi

    def vertices(self, params: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """(N, 3) image-space vertices (x, y down, z nearer) of crop-frame ``params``."""
        v = self.model.reconstruct(torch.as_tensor(params, dtype=torch.float64)[None])[0].numpy()
        return crop_to_image(v[None], np.asarray(roi, np.float64)[None])[0]

    def _check_params(self, params, roi):
        p = np.asarray(params, dtype=np.float64).reshape(-1)
        if p.shape != (self.model.num_params,) or not np.isfinite(p).all():
            raise ValueError(f"argument `params` must be {self.model.num_params} finite values "
                             f"(12 + I + E of the model), got shape {np.shape(params)}")
        if roi is None:
            raise ValueError("argument `roi` is required with `params` (they are crop-frame values)")
        r = np.asarray(roi, dtype=np.float64).reshape(-1)
        if r.shape != (4,) or not np.isfinite(r).all() or r[2] <= r[0] or r[3] <= r[1]:
            raise ValueError(f"argument `roi` must be [x1, y1, x2, y2] with x2 > x1, y2 > y1, got {roi}")
        return p, r

    # ------------------------------------------------------------------ profiling
    def profile(self, image, landmarks68=None, *, params=None, roi=None,
                yaw_deltas: Optional[Sequence[float]] = None, views: int = 11,
                yaw_step: float = 15.0, mode: str = "outward",
                max_yaw: float = 90.0) -> List[ProfiledView]:
        """Views of ``image`` with the face turned in yaw.

        Args:
            image: (H, W[, C]) uint8 (any channel order; passed through).
            landmarks68: (68, 2) image pixels (0-based, iBUG order); fitted unless
                ``params`` and ``roi`` are given.
            params, roi: crop-frame parameters of this model and their ROI (skip fitting).
            yaw_deltas: explicit yaw changes in degrees (overrides the schedule).
            views, yaw_step, mode, max_yaw: the schedule (:func:`yaw_schedule`).

        Returns:
            list of :class:`ProfiledView`, in the order of the yaw changes.
        """
        img = _check_image(image)
        H, W = img.shape[:2]
        if params is None:
            if landmarks68 is None:
                raise ValueError("give `landmarks68` (to fit) or `params` and `roi`")
            p0, roi0 = self.fit(landmarks68)
        else:
            if landmarks68 is not None:
                _check_landmarks(landmarks68)
            p0, roi0 = self._check_params(params, roi)
        pose = torch.from_numpy(p0[:12].reshape(1, 3, 4))
        yaw0, _, roll0 = (float(a) for a in euler_angles(pose))
        if yaw_deltas is None:
            deltas = yaw_schedule(math.degrees(yaw0), views, yaw_step, mode, max_yaw)
        else:
            deltas = [float(d) for d in yaw_deltas]
            if not deltas or not all(math.isfinite(d) and abs(d) <= 180 for d in deltas):
                raise ValueError(f"argument `yaw_deltas` must be finite degrees in [-180, 180], got {yaw_deltas}")

        c = self.config
        mesh = self.mesh
        N = self.model.N
        v_model = self.model.reconstruct(torch.from_numpy(p0)[None])[0].numpy()  # crop frame
        v_src = mesh.extend(crop_to_image(v_model[None], roi0[None])[0])        # (N + caps, 3)
        lm_src = v_src[self.lm_ids, :2]
        scale = float(np.max(lm_src.max(0) - lm_src.min(0)))
        if not scale > 1.0:
            raise ValueError(f"the fitted face is {scale:.2f} pixels wide; too small to profile")
        t = p0[[3, 7, 11]]
        if c.pivot == "origin":
            pivot = t.copy()
        elif c.pivot == "centroid":
            pivot = v_model.mean(0)
        else:
            pivot = v_model[self.lm_ids].mean(0)
        pivot_img = crop_to_image(pivot[None, None], roi0[None])[0, 0]
        # source-view face rendering: silhouette and depths
        fi, _, depth = ops.rasterize(torch.from_numpy(v_src)[None].float(), self._tri, H, W)
        face_mask = (fi[0] >= 0).numpy()
        anchors = build_anchor_mesh(face_mask, depth[0].numpy().astype(np.float64), scale,
                                    background_depth=float(pivot_img[2]), rings=c.rings,
                                    hold=c.hold, release=c.release, spacing=c.spacing,
                                    border_spacing=max(H, W) / float(c.border_anchors),
                                    depth_offset=c.depth_offset)
        n_face = v_src.shape[0]
        tris = torch.from_numpy(np.concatenate([mesh.triangles, anchors.triangles + n_face]).astype(np.int32))
        # the anchors are drawn behind the face: their depths are lowered by more than any
        # rotation about the pivot can change depths (|p - pivot| is kept by rotations and
        # by the blends toward the static positions)
        reach = float(np.abs(np.concatenate([v_src, anchors.points]) - pivot_img).max())
        shift = np.array([0.0, 0.0, 2.0 * reach + scale])
        src = np.concatenate([v_src, anchors.points - shift])      # (M, 3) source positions
        # per-vertex source position of the mirror vertex (NaN: none; anchors have none)
        mir = np.full_like(src, np.nan)
        if c.mirror_fill and c.fill_occluded:
            ok = self.mirror >= 0
            mir[:n_face][ok] = v_src[self.mirror[ok]]
        src_t = torch.from_numpy(src).float()[None]
        # the source view's depth buffer (for the self-occlusion test): min over 3x3
        _, _, d_src = ops.rasterize(src_t, tris, H, W)
        d_src = cv2.erode(d_src[0].numpy(), np.ones((3, 3), np.uint8))
        a_crop = image_to_crop(anchors.points[None], roi0[None])[0]
        fr = p0[:12].reshape(3, 4)[:, :3]
        out = []
        for d in deltas:
            Q = yaw_rotation(d, roll0)
            p_new = p0.copy()
            p_new[:12] = np.concatenate([Q @ fr, (Q @ (t - pivot) + pivot)[:, None]], 1).reshape(12)
            v_new = mesh.extend(self.vertices(p_new, roi0))
            a_rot = crop_to_image(((a_crop - pivot) @ Q.T + pivot)[None], roi0[None])[0]
            a_new = anchors.points + anchors.weight[:, None] * (a_rot - anchors.points)
            out.append(self._render(img, src_t, mir, tris, d_src, np.concatenate([v_new, a_new - shift]),
                                    p_new, roi0, d, scale, shift[2]))
        return out

    def _render(self, img, src_t, mir, tris, d_src, scene, p_new, roi0, delta, scale, shift):
        c = self.config
        H, W = img.shape[:2]
        fi, bary, depth = ops.rasterize(torch.from_numpy(scene).float()[None], tris, H, W)
        att = ops.interpolate(src_t, fi, bary, tris)[0].numpy()    # (H, W, 3) source x, y, z
        fi = fi[0].numpy()
        covered = fi >= 0
        depth = depth[0].numpy()
        tol = c.occlusion_tol * scale

        def usable(x, y, z):  # inside the source image and (optionally) seen there
            ok = (x >= -0.5) & (x <= W - 0.5) & (y >= -0.5) & (y <= H - 0.5)
            if c.fill_occluded:
                xi = (np.clip(x, 0, W - 1) + 0.5).astype(np.int64)
                yi = (np.clip(y, 0, H - 1) + 0.5).astype(np.int64)
                ok &= z >= d_src[yi, xi] - tol
            return ok

        mx = np.ascontiguousarray(att[..., 0])
        my = np.ascontiguousarray(att[..., 1])
        ok = covered & usable(mx, my, att[..., 2])
        mirrored = np.zeros((H, W), bool)
        if c.mirror_fill and c.fill_occluded:
            # pixels of face triangles that cannot use their own source point: the mirror
            # point's source position, interpolated with the same barycentrics
            cand = np.flatnonzero(~ok & covered & (fi < len(self.mesh.triangles)))
            if len(cand):
                t = tris.numpy()[fi.reshape(-1)[cand]]                  # (k, 3)
                b = bary[0].numpy().reshape(-1, 3)[cand]
                m = (mir[t] * b[..., None]).sum(1)                      # (k, 3), NaN: none
                with np.errstate(invalid="ignore"):
                    good = np.isfinite(m).all(1)
                    good[good] = usable(m[good, 0], m[good, 1], m[good, 2])
                use = cand[good]
                mirrored.reshape(-1)[use] = True
                mx.reshape(-1)[use] = m[good, 0]
                my.reshape(-1)[use] = m[good, 1]
        holes = ~(ok | mirrored)
        res = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        res = res.reshape(img.shape)
        if holes.any():
            res[holes] = 0
            res = cv2.inpaint(res, holes.astype(np.uint8), int(c.inpaint_radius),
                              cv2.INPAINT_TELEA).reshape(img.shape)
        # labels: landmarks, their visibility in this view's Z-buffer, parameters for the ROI
        lm3 = scene[self.lm_ids]
        on_face = covered & (fi < len(self.mesh.triangles))
        if self.full_mesh is self.mesh:
            vis = landmark_visibility(lm3, depth, on_face, c.visibility_tol * scale)
        else:  # the whole model's Z-buffer around the landmarks
            v_full = self.full_mesh.extend(scene[:self.model.N])
            x0, y0, h, w = face_roi(torch.from_numpy(lm3)[None], H, W, pad=2)
            fv, _, dv = ops.rasterize(torch.from_numpy(v_full)[None].float(),
                                      torch.from_numpy(self.full_mesh.triangles), h, w, x0, y0)
            vis = landmark_visibility(lm3 - [x0, y0, 0], dv[0].numpy(), (fv[0] >= 0).numpy(),
                                      c.visibility_tol * scale)
            vis &= (lm3[:, 0] >= -0.5) & (lm3[:, 0] < W - 0.5) & (lm3[:, 1] >= -0.5) & (lm3[:, 1] < H - 0.5)
        depth = np.where(covered & ~on_face, depth + shift, depth)
        lm = lm3[:, :2].copy()
        roi = roi_from_landmarks(lm)
        pv = p_new.copy()
        pv[:12] = image_affine_to_params(params_to_image_affine(p_new, roi0, CROP_SIZE), roi, CROP_SIZE)
        yaw, pitch, roll = (float(a) for a in euler_angles(torch.from_numpy(pv[:12].reshape(1, 3, 4)),
                                                            degrees=True))
        return ProfiledView(image=res, landmarks=lm, visibility=vis, params=pv, roi=roi, yaw=yaw,
                            pitch=pitch, roll=roll, yaw_delta=float(delta), filled=holes,
                            mirrored=mirrored, depth=depth.astype(np.float32))


def front_triangles(vertices: np.ndarray, triangles: np.ndarray, landmark_ids: np.ndarray,
                    front: float, below: float) -> np.ndarray:
    """The triangles of the front of a face mesh (see ``ProfileConfig.face_cut``): all three
    vertices (model frame, y up, z toward the viewer) at least ``front * w`` in front of the
    mean depth of landmarks 0 and 16 and at most ``below * w`` below landmark 8 (``w`` the
    x extent of the landmarks); of those, the largest vertex-connected piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    v = np.asarray(vertices, np.float64)
    lm = v[landmark_ids]
    w = np.ptp(lm[:, 0])
    keep_v = (v[:, 2] >= lm[[0, 16], 2].mean() + front * w) & (v[:, 1] >= lm[8, 1] - below * w)
    t = triangles[keep_v[triangles].all(1)]
    if len(t) == 0:
        raise ValueError(f"face_cut {(front, below)} leaves no triangle of the model")
    n = len(v)
    e = np.concatenate([t[:, [0, 1]], t[:, [1, 2]]])
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, lab = connected_components(g, directed=False)
    big = np.bincount(lab[t[:, 0]]).argmax()
    return t[lab[t[:, 0]] == big]


def mirror_map(vertices: np.ndarray, triangles: np.ndarray, landmark_ids: np.ndarray) -> np.ndarray:
    """Left-right mirror vertex map of a (nearly) symmetric mesh: for each vertex of
    ``vertices`` (N, 3) (model frame), the vertex nearest to its reflection in the plane
    ``x = c`` (``c`` the mean x of the landmark vertices), or -1 when that is farther than a
    quarter of the median edge length."""
    from scipy.spatial import cKDTree
    v = np.asarray(vertices, np.float64)
    cx = v[landmark_ids, 0].mean()
    refl = v * np.array([-1.0, 1.0, 1.0]) + np.array([2 * cx, 0.0, 0.0])
    dist, idx = cKDTree(v).query(refl)
    t = np.asarray(triangles, np.int64)
    edge = np.median(np.linalg.norm(v[t[:, 0]] - v[t[:, 1]], axis=1))
    return np.where(dist <= 0.25 * edge, idx, -1).astype(np.int64)


def landmark_visibility(points: np.ndarray, depth: np.ndarray, covered: np.ndarray,
                        tol: float) -> np.ndarray:
    """Visibility of image-space points (K, 3) in a face's depth buffer (H, W) with its
    coverage mask: a point is visible when its nearest pixel centre is inside the image and
    nothing covers it there (a point on the outline) or its depth is at least the smallest
    covered depth of the 3x3 pixels around it minus ``tol`` (points on a silhouette, where
    the depth jumps within a pixel, count as visible)."""
    H, W = depth.shape
    dmin = cv2.erode(np.where(covered, depth, np.inf).astype(np.float32), np.ones((3, 3), np.uint8))
    x = np.round(points[:, 0]).astype(np.int64)
    y = np.round(points[:, 1]).astype(np.int64)
    inside = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    xc, yc = np.clip(x, 0, W - 1), np.clip(y, 0, H - 1)
    return inside & (~covered[yc, xc] | (points[:, 2] >= dmin[yc, xc] - tol))


_PROFILERS: dict = {}


def profile_face(image, landmarks68=None, model=None, *, params=None, roi=None,
                 yaw_deltas: Optional[Sequence[float]] = None, views: int = 11,
                 yaw_step: float = 15.0, mode: str = "outward", max_yaw: float = 90.0,
                 config: Optional[ProfileConfig] = None) -> List[ProfiledView]:
    """Profile one face: see :class:`FaceProfiler` and :meth:`FaceProfiler.profile`.

    ``model`` None means ``"ict"``; a :class:`FaceProfiler` for a model given by name is
    cached (the closed mesh is built once).
    """
    spec = "ict" if model is None else model
    if isinstance(spec, FaceProfiler):
        prof = spec
    elif isinstance(spec, str):
        key = (spec, config)
        prof = _PROFILERS.get(key)
        if prof is None:
            prof = _PROFILERS[key] = FaceProfiler(spec, config)
    else:
        prof = FaceProfiler(spec, config)
    return prof.profile(image, landmarks68, params=params, roi=roi, yaw_deltas=yaw_deltas,
                        views=views, yaw_step=yaw_step, mode=mode, max_yaw=max_yaw)
