"""``FaceReconstructor``: image(s) -> detect -> ROI -> crop -> network (all faces of a frame
in one batch) -> 3DMM parameters -> 68 landmarks (2D and 3D), dense vertices, pose and
optionally depth / PNCC / mesh, all in image coordinates.

Frames and units (see docs/pipeline.md): image pixels, 0-based, x right, y down, pixel
centres at integers; a landmark / vertex ``z`` is in the same pixel units, larger = nearer
the camera (``z = Z * (x2 - x1) / 120`` of the model-frame value, the invertible part of
3DDFA_V2's map). Pose angles are 3DDFA_V2's (yaw, pitch, roll) in degrees.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.roi import CROP_SIZE, crop_image, crop_to_image, roi_from_landmarks
from .backends import Backend, make_backend
from .detect import FaceDetector, check_image, make_detector

__all__ = ["FaceResult", "FrameResult", "FaceReconstructor", "MorphableHead", "KeypointHead",
           "default_weights_path"]


def default_weights_path() -> Optional[str]:
    """The shipped default weights (``pyface3d/assets/pyface3d_default.pt``) when present."""
    p = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets",
                     "pyface3d_default.pt")
    return p if os.path.isfile(p) else None


@dataclass
class FaceResult:
    """One face. Arrays are float64 numpy in image coordinates (module doc).

    Attributes:
        box: (5,) detector box ``[x1, y1, x2, y2, score]`` (for a tracked face: the box of
            the previous landmarks, score = tracking confidence).
        roi: (4,) the square ROI the crop was taken from.
        params: (P,) de-whitened parameters in the crop frame (3DDFA convention, y up).
        landmarks: (68, 3) landmarks (x, y, z).
        pose: (3,) yaw, pitch, roll in degrees.
        score: detection score or tracking confidence in [0, 1].
        vertices: (N, 3) dense vertices, when requested (``dense=True``).
        track_id: id of the track in video (None for single images).
    """
    box: np.ndarray
    roi: np.ndarray
    params: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    score: float
    vertices: Optional[np.ndarray] = None
    track_id: Optional[int] = None

    @property
    def landmarks2d(self) -> np.ndarray:
        return self.landmarks[:, :2]

    def to_dict(self, vertices: bool = False) -> Dict[str, Any]:
        d = {"box": self.box[:4].tolist(), "score": float(self.score),
             "roi": self.roi.tolist(), "pose": {"yaw": float(self.pose[0]),
                                                "pitch": float(self.pose[1]),
                                                "roll": float(self.pose[2])},
             "landmarks": self.landmarks.round(3).tolist(), "params": self.params.tolist()}
        if self.track_id is not None:
            d["track_id"] = int(self.track_id)
        if vertices and self.vertices is not None:
            d["vertices"] = self.vertices.round(3).tolist()
        return d


@dataclass
class FrameResult:
    """All faces of one image, the image size (h, w) and per-stage times in milliseconds."""
    faces: List[FaceResult]
    image_size: tuple
    timings: Dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.faces)

    def to_dict(self, vertices: bool = False) -> Dict[str, Any]:
        return {"image_size": {"height": int(self.image_size[0]),
                               "width": int(self.image_size[1])},
                "faces": [f.to_dict(vertices) for f in self.faces],
                "timings_ms": {k: round(v, 3) for k, v in self.timings.items()}}

    def to_json(self, vertices: bool = False, **kw) -> str:
        return json.dumps(self.to_dict(vertices), **kw)


class MorphableHead:
    """Parameters -> landmarks / dense vertices through a :class:`MorphableModel`."""

    def __init__(self, morphable):
        self.mm = morphable.to("cpu")
        self.param_mean = self.mm.param_mean.double().numpy()
        self.param_std = self.mm.param_std.double().numpy()
        self.triangles = self.mm.triangles
        self.dense = True

    @torch.no_grad()
    def landmarks(self, params: np.ndarray) -> np.ndarray:
        p = torch.from_numpy(params.astype(np.float32))
        return self.mm.reconstruct(p, landmarks_only=True).double().numpy()

    @torch.no_grad()
    def vertices(self, params: np.ndarray) -> np.ndarray:
        p = torch.from_numpy(params.astype(np.float32))
        return self.mm.reconstruct(p).double().numpy()


class KeypointHead:
    """Parameters -> 68 landmarks through 68-keypoint bases (e.g. the 3DDFA_V2 teacher's);
    no dense mesh."""

    def __init__(self, bases, param_mean, param_std):
        self.kb = bases
        self.param_mean = np.asarray(param_mean, np.float64)
        self.param_std = np.asarray(param_std, np.float64)
        self.triangles = None
        self.dense = False

    def landmarks(self, params: np.ndarray) -> np.ndarray:
        return self.kb.reconstruct(params)

    def vertices(self, params: np.ndarray) -> np.ndarray:
        raise ValueError("this model has 68-keypoint bases only: dense vertices, depth, PNCC "
                         "and meshes need a morphable model (weights trained by pyface3d)")


def _pose_deg(params: np.ndarray) -> np.ndarray:
    from ..morphable.params import euler_angles
    if len(params) == 0:
        return np.zeros((0, 3))
    y, p, r = euler_angles(torch.from_numpy(params[:, :12].reshape(-1, 3, 4)), degrees=True)
    return torch.stack([y, p, r], 1).numpy()


class FaceReconstructor:
    """The face pipeline.

    Build it with :meth:`from_weights` (weights from ``pyface3d train``; ``None`` = the
    shipped default model), :meth:`from_teacher` (the 3DDFA_V2 mb05 teacher folder:
    landmarks only, for development), or directly from a backend and a head.

    Args:
        backend: a :class:`~pyface3d.pipeline.backends.Backend` (crops -> whitened params).
        head: :class:`MorphableHead` or :class:`KeypointHead`.
        detector: see :func:`~pyface3d.pipeline.detect.make_detector` (default "auto":
            YuNet when its model is found, else Haar).
        crop_method: ``"3ddfa_v2"`` (what the networks are trained on) or ``"exact"``.
        max_faces: keep the best ``max_faces`` detections (None: all).
    """

    def __init__(self, backend: Backend, head, detector="auto", crop_method: str = "3ddfa_v2",
                 max_faces: Optional[int] = None):
        self.backend, self.head = backend, head
        self._detector_spec = detector
        self._detector: Optional[FaceDetector] = None
        if crop_method not in ("3ddfa_v2", "exact"):
            raise ValueError(f"argument `crop_method` must be '3ddfa_v2' or 'exact', got "
                             f"{crop_method!r}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"argument `max_faces` must be >= 1 or None, got {max_faces}")
        self.crop_method, self.max_faces = crop_method, max_faces
        self._ncc = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_weights(cls, weights=None, morphable="ict", backend: str = "torch",
                     device="cpu", fp16: bool = False, detector="auto",
                     backend_options: Optional[Dict[str, Any]] = None, **kw):
        """From ``model.pt`` written by ``pyface3d train`` (``None``: the shipped default)
        and the morphable model it was trained with (checked by sha256)."""
        from ..morphable import resolve
        from ..train.trainer import load_trained

        if weights is None:
            weights = default_weights_path()
            if weights is None:
                raise FileNotFoundError(
                    "no default weights are installed (pyface3d/assets/pyface3d_default.pt "
                    "is missing): pass `weights` (--weights), a model.pt written by "
                    "`pyface3d train`")
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"argument `weights` (--weights): {weights} is not a file")
        mm = resolve(morphable)
        net = load_trained(weights, mm)
        opts = dict(backend_options or {})
        if backend in ("onnxruntime", "tensorrt"):
            opts.setdefault("morphable", mm)
        be = make_backend(backend, net, device=device, fp16=fp16, **opts)
        return cls(be, MorphableHead(mm), detector=detector, **kw)

    @classmethod
    def from_teacher(cls, folder, backend: str = "torch", device="cpu", detector="auto",
                     backend_options: Optional[Dict[str, Any]] = None, **kw):
        """The 3DDFA_V2 mb05 teacher (development only: landmarks and pose, no mesh)."""
        from ..eval.evaluate import load_teacher
        from ..data import load_3ddfa_keypoint_bases

        pred = load_teacher(folder)
        be = make_backend(backend, pred.net, device=device, **(backend_options or {}))
        head = KeypointHead(load_3ddfa_keypoint_bases(os.fspath(folder)),
                            pred.param_mean.numpy(), pred.param_std.numpy())
        return cls(be, head, detector=detector, **kw)

    # ------------------------------------------------------------------ stages
    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = make_detector(self._detector_spec, max_faces=self.max_faces)
        return self._detector

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(K, 5) boxes of ``image`` (BGR uint8)."""
        return self.detector.detect(check_image(image))

    def crops(self, image: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """(K, 3, 120, 120) float32 normalised crops of ``rois`` (K, 4)."""
        out = np.empty((len(rois), 3, CROP_SIZE, CROP_SIZE), np.float32)
        for i, r in enumerate(rois):
            c = crop_image(image, r, CROP_SIZE, self.crop_method)
            out[i] = (c.transpose(2, 0, 1).astype(np.float32) - 127.5) / 128.0
        return out

    def regress(self, crops: np.ndarray) -> np.ndarray:
        """(K, P) de-whitened parameters (float64) of normalised crops."""
        if len(crops) == 0:
            return np.zeros((0, len(self.head.param_mean)))
        out = np.asarray(self.backend(crops), np.float64)
        if out.ndim != 2 or out.shape[1] != len(self.head.param_mean):
            raise ValueError(f"the network outputs shape {out.shape} but the morphable model "
                             f"has {len(self.head.param_mean)} parameters (weights and "
                             "morphable model do not belong together)")
        return out * self.head.param_std + self.head.param_mean

    def reconstruct_rois(self, image: np.ndarray, rois: np.ndarray, boxes=None,
                         dense: bool = False, timings: Optional[Dict[str, float]] = None
                         ) -> List[FaceResult]:
        """Faces from given ROIs (K, 4) (one network batch). ``boxes`` (K, 5) are recorded
        in the results (default: the ROIs with score 1)."""
        image = check_image(image)
        rois = np.asarray(rois, np.float64).reshape(-1, 4)
        tm = timings if timings is not None else {}
        t0 = time.perf_counter()
        crops = self.crops(image, rois)
        t1 = time.perf_counter()
        params = self.regress(crops)
        t2 = time.perf_counter()
        lm = crop_to_image(self.head.landmarks(params), rois) if len(rois) else np.zeros((0, 68, 3))
        pose = _pose_deg(params)
        verts = None
        if dense and len(rois):
            verts = crop_to_image(self.head.vertices(params), rois)
        t3 = time.perf_counter()
        tm["crop"] = tm.get("crop", 0.0) + (t1 - t0) * 1e3
        tm["network"] = tm.get("network", 0.0) + (t2 - t1) * 1e3
        tm["reconstruct"] = tm.get("reconstruct", 0.0) + (t3 - t2) * 1e3
        if boxes is None:
            boxes = np.concatenate([rois, np.ones((len(rois), 1))], 1)
        return [FaceResult(box=np.asarray(boxes[i], np.float64), roi=rois[i], params=params[i],
                           landmarks=lm[i], pose=pose[i], score=float(boxes[i][4]),
                           vertices=None if verts is None else verts[i])
                for i in range(len(rois))]

    def __call__(self, image: np.ndarray, boxes=None, landmarks=None,
                 dense: bool = False) -> FrameResult:
        """Reconstruct every face of ``image`` (BGR uint8 (H, W, 3), as cv2 reads it).

        Faces come from the detector, or from ``boxes`` (K, 4|5) detector-style boxes, or
        from ``landmarks`` (K, >=2, 2) previous landmarks (ROI by 3DDFA_V2's landmark rule).
        ``dense`` also returns the dense vertices (needed for depth / PNCC / meshes).
        """
        image = check_image(image)
        tm: Dict[str, float] = {}
        t0 = time.perf_counter()
        if landmarks is not None:
            lm = np.asarray(landmarks, np.float64)
            if lm.ndim == 2:
                lm = lm[None]
            rois = roi_from_landmarks(lm[..., :2]).reshape(-1, 4)
            lo, hi = np.nanmin(lm[..., :2], 1), np.nanmax(lm[..., :2], 1)
            det = np.concatenate([lo, hi, np.ones((len(lm), 1))], 1)
        else:
            if boxes is None:
                det = self.detect(image)
                tm["detect"] = (time.perf_counter() - t0) * 1e3
                to_roi = self.detector.roi
            else:
                from .detect import BoxesDetector
                bd = BoxesDetector(boxes)
                det, to_roi = bd.boxes, bd.roi
            if self.max_faces:
                det = det[: self.max_faces]
            rois = to_roi(det)
        faces = self.reconstruct_rois(image, rois, det, dense, tm)
        tm["total"] = (time.perf_counter() - t0) * 1e3
        return FrameResult(faces, image.shape[:2], tm)

    def process_batch(self, images: Sequence[np.ndarray], dense: bool = False
                      ) -> List[FrameResult]:
        """Several images: detection per image, then every face of every image in one
        network batch."""
        imgs = [check_image(im, f"images[{i}]") for i, im in enumerate(images)]
        t0 = time.perf_counter()
        dets = [self.detect(im)[: self.max_faces] if self.max_faces else self.detect(im)
                for im in imgs]
        t1 = time.perf_counter()
        crops, rois, owners = [], [], []
        for i, (im, d) in enumerate(zip(imgs, dets)):
            if len(d):
                r = self.detector.roi(d)
                crops.append(self.crops(im, r))
                rois.append(r)
                owners += [i] * len(r)
        t2 = time.perf_counter()
        if not crops:
            return [FrameResult([], im.shape[:2], {"detect": (t1 - t0) * 1e3 / len(imgs)})
                    for im in imgs]
        crops_a, rois_a = np.concatenate(crops), np.concatenate(rois)
        params = self.regress(crops_a)
        t3 = time.perf_counter()
        lm = crop_to_image(self.head.landmarks(params), rois_a)
        verts = crop_to_image(self.head.vertices(params), rois_a) if dense else None
        pose = _pose_deg(params)
        t4 = time.perf_counter()
        boxes = np.concatenate([d for d in dets if len(d)])
        out = [FrameResult([], im.shape[:2]) for im in imgs]
        for k, i in enumerate(owners):
            out[i].faces.append(FaceResult(boxes[k], rois_a[k], params[k], lm[k], pose[k],
                                           float(boxes[k][4]),
                                           None if verts is None else verts[k]))
        n = len(imgs)
        for fr in out:
            fr.timings = {"detect": (t1 - t0) * 1e3 / n, "crop": (t2 - t1) * 1e3 / n,
                          "network": (t3 - t2) * 1e3 / n, "reconstruct": (t4 - t3) * 1e3 / n}
        return out

    # ------------------------------------------------------------------ rendering
    def _need_dense(self, faces: Sequence[FaceResult]) -> None:
        if not self.head.dense:
            raise ValueError("depth / PNCC / meshes need dense vertices: this model has "
                             "68-keypoint bases only")
        for f in faces:
            if f.vertices is None:
                f.vertices = crop_to_image(self.head.vertices(f.params[None]), f.roi[None])[0]

    def render_window(self, faces: Sequence[FaceResult], image_size, what: str = "depth"):
        """Render ``what`` ("depth", "pncc" or "normals") of ``faces`` in the window of an
        ``image_size`` (h, w) frame that covers them: each face is rasterized into its own
        box only (cost ~ face size, not frame size) and faces are composited by depth.

        Returns ``(image (h', w', C) float32, mask (h', w') bool, x0, y0)``: the window's
        top-left pixel is frame pixel (x0, y0). Depth is in image-pixel z units (larger =
        nearer), 0 on background; PNCC and normals ((n + 1) / 2) are RGB in [0, 1]."""
        from .. import render as R

        if what not in ("depth", "pncc", "normals"):
            raise ValueError(f"argument `what` must be 'depth', 'pncc' or 'normals', got {what!r}")
        h, w = int(image_size[0]), int(image_size[1])
        self._need_dense(faces)
        C = 1 if what == "depth" else 3
        tris = self.head.triangles
        boxes = []
        for f in faces:
            v = torch.from_numpy(f.vertices.astype(np.float32))[None]
            mn, mx = torch.aminmax(v[0, :, :2], dim=0)
            lo, hi = mn.double().numpy(), mx.double().numpy()
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or hi[0] < 0 or \
                    hi[1] < 0 or lo[0] > w - 1 or lo[1] > h - 1:
                continue  # off the frame (or degenerate)
            # the box of pixel centres it can cover (as render.face_roi), clipped
            x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
            x1, y1 = min(int(np.ceil(hi[0])) + 1, w - 1), min(int(np.ceil(hi[1])) + 1, h - 1)
            boxes.append((v, x0, y0, y1 - y0 + 1, x1 - x0 + 1))
        if not boxes:
            return np.zeros((1, 1, C), np.float32), np.zeros((1, 1), bool), 0, 0
        X0 = min(b[1] for b in boxes)
        Y0 = min(b[2] for b in boxes)
        X1 = max(b[1] + b[4] for b in boxes)
        Y1 = max(b[2] + b[3] for b in boxes)
        if len(boxes) == 1:  # one face: its own window, nothing to composite
            v, x0, y0, hh, ww = boxes[0]
            fr = R.rasterize(v, tris, hh, ww, x0, y0)
            return self._shade(what, v, fr, tris), fr.mask[0].numpy(), x0, y0
        img = np.zeros((Y1 - Y0, X1 - X0, C), np.float32)
        zbuf = np.full((Y1 - Y0, X1 - X0), -np.inf, np.float32)
        mask = np.zeros((Y1 - Y0, X1 - X0), bool)
        for v, x0, y0, hh, ww in boxes:
            fr = R.rasterize(v, tris, hh, ww, x0, y0)
            m = fr.mask[0].numpy()
            d = fr.depth[0].numpy()
            val = self._shade(what, v, fr, tris)
            ys, xs = slice(y0 - Y0, y0 - Y0 + hh), slice(x0 - X0, x0 - X0 + ww)
            sub = zbuf[ys, xs]
            win = m & (d > sub)
            sub[win] = d[win]
            img[ys, xs][win] = val[win]
            mask[ys, xs] |= m
        return img, mask, X0, Y0

    def _shade(self, what, v, fr, tris) -> np.ndarray:
        """(h, w, C) float32 values of ``what`` over fragments ``fr`` of vertices ``v``."""
        from .. import render as R
        if what == "depth":
            return fr.depth[0, ..., None].numpy()
        if what == "pncc":
            if self._ncc is None:
                self._ncc = R.ncc_code(self.head.mm.mean.view(-1, 3))[None].float()
            return R.render_attributes(self._ncc, fr, tris)[0].numpy()
        nv = R.vertex_normals(v, tris)
        n = R.render_attributes(nv, fr, tris)[0]
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        n = torch.where(n[..., 2:3] < 0, -n, n)
        return (((n + 1) / 2) * fr.mask[0, ..., None]).numpy()

    def render(self, faces: Sequence[FaceResult], image_size, what: str = "depth"):
        """Like :meth:`render_window`, placed in a full ``image_size`` frame: returns
        (image (h, w, C) float32, mask (h, w) bool)."""
        h, w = int(image_size[0]), int(image_size[1])
        win, m, x0, y0 = self.render_window(faces, image_size, what)
        img = np.zeros((h, w, win.shape[2]), np.float32)
        mask = np.zeros((h, w), bool)
        hh, ww = m.shape
        img[y0:y0 + hh, x0:x0 + ww] = win
        mask[y0:y0 + hh, x0:x0 + ww] = m
        return img, mask

    def mesh(self, face: FaceResult):
        """(vertices (N, 3) image coordinates, triangles (F, 3)) of a face, for
        :func:`pyface3d.render.write_obj` / ``write_ply``."""
        self._need_dense([face])
        return face.vertices, self.head.triangles.numpy()
