"""Benchmark suites behind ``pyface3d bench`` (and ``bench/bench_pipeline.py``):

* network latency / throughput per backend at several batch sizes, with params and GMACs;
* the pipeline on a 640x480 clip with one moving face, tracking mode: per-stage latency,
  end-to-end fps, and the tracked per-face path (crop + network + reconstruction +
  landmarks);
* rendering depth and PNCC of one face into a 1080p frame.

The clip is built at run time (no video file ships): a face image from
``$PYFACE3D_SHARED/data/300w/dev`` when present, else a face rendered from the morphable
model, moved and scaled smoothly over a textured background and written to a temporary
MP4 (so decoding is part of the measurement).
"""
from __future__ import annotations

import glob
import math
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch

__all__ = ["time_call", "bench_network", "make_clip", "bench_pipeline", "bench_per_face",
           "bench_render"]


def time_call(fn: Callable[[], object], min_time: float = 0.5, warmup: int = 3,
              max_runs: int = 10000) -> Dict[str, float]:
    """Median and IQR (seconds) of ``fn()`` over at least ``min_time`` seconds."""
    for _ in range(warmup):
        fn()
    ts: List[float] = []
    t_end = time.perf_counter() + min_time
    while (time.perf_counter() < t_end or len(ts) < 5) and len(ts) < max_runs:
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    q = statistics.quantiles(ts, n=4) if len(ts) >= 4 else [min(ts), 0, max(ts)]
    return {"median_s": statistics.median(ts), "iqr_s": q[2] - q[0], "runs": len(ts)}


def bench_network(net: torch.nn.Module, backends: Sequence[str] = ("torch",),
                  batches: Sequence[int] = (1, 8, 64), device: str = "cpu",
                  min_time: float = 0.5, backend_options: Optional[Dict] = None,
                  morphable=None) -> Dict:
    """Latency per backend and batch size of ``net`` on (B, 3, 120, 120) inputs."""
    from .. import models
    from .backends import make_backend

    out = {"params": models.count_params(net),
           "macs": models.count_flops(net.eval(), (1, 3, 120, 120)), "backends": {}}
    rng = np.random.default_rng(0)
    for name in backends:
        opts = dict((backend_options or {}).get(name, {}))
        if name in ("onnxruntime", "tensorrt") and morphable is not None:
            opts.setdefault("morphable", morphable)
        be = make_backend(name, net, device=device, **opts)
        res = {}
        for b in batches:
            x = rng.standard_normal((b, 3, 120, 120)).astype(np.float32)
            m = time_call(lambda: be(x), min_time)
            m["images_per_s"] = b / m["median_s"]
            res[str(b)] = m
        out["backends"][name] = res
    return out


def _face_image(shared: Optional[str]) -> np.ndarray:
    root = shared or os.environ.get("PYFACE3D_SHARED", "")
    files = sorted(glob.glob(os.path.join(root, "data", "300w", "dev", "lfpw_test", "*.jpg")))
    if files:
        img = cv2.imread(files[3])
        h, w = img.shape[:2]
        s = 220 / max(h, w)
        return cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    from ..morphable import resolve
    from ..train.datasets import RenderedFaces
    ds = RenderedFaces(resolve("ict"), n=1, seed=3, size=220, yaw=20, pitch=10, roll=5)
    return ds.render(ds.params_of(0), 0).numpy().astype(np.uint8)


def make_clip(path: str, frames: int = 300, size=(640, 480), fps: float = 30.0,
              shared: Optional[str] = None) -> str:
    """Write the benchmark clip (module doc) to ``path`` (.mp4); returns ``path``."""
    face = _face_image(shared)
    W, H = size
    yy, xx = np.mgrid[0:H, 0:W]
    bg = (90 + 30 * np.sin(xx / 37.0)[..., None] * np.cos(yy / 23.0)[..., None]
          + np.array([10, 0, -10])).clip(0, 255).astype(np.uint8)
    wr = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    if not wr.isOpened():
        raise RuntimeError(f"could not write {path}")
    for i in range(frames):
        s = 1.0 + 0.15 * math.sin(i / 40.0)
        f = cv2.resize(face, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        fh, fw = f.shape[:2]
        x = int((W - fw) / 2 + (W - fw) / 3 * math.sin(i / 25.0))
        y = int((H - fh) / 2 + (H - fh) / 4 * math.cos(i / 31.0))
        frame = bg.copy()
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + fw, W), min(y + fh, H)
        frame[y0:y1, x0:x1] = f[y0 - y:y1 - y, x0 - x:x1 - x]
        wr.write(frame)
    wr.release()
    return path


def bench_pipeline(rec, clip: Optional[str] = None, frames: int = 300,
                   redetect_every: int = 30, min_confidence: float = 0.5,
                   overlays: Sequence[str] = ("landmarks",), write: bool = True) -> Dict:
    """Run the tracking pipeline over the clip (built when ``clip`` is None) and return
    its :class:`RunStats` as a dict plus ``per_face_ms`` (crop + network +
    reconstruction, the tracked per-face path)."""
    from .video import VideoRunner

    with tempfile.TemporaryDirectory() as tmp:
        if clip is None:
            clip = make_clip(os.path.join(tmp, "clip.mp4"), frames)
        runner = VideoRunner(rec, overlays=overlays,
                             out=os.path.join(tmp, "out.mp4") if write else None,
                             print_every=0, redetect_every=redetect_every,
                             min_confidence=min_confidence, max_faces=1)
        st = runner.run(clip)
    d = st.to_dict()
    tracked = max(st.frames_processed, 1)
    d["per_face_ms"] = sum(st.stage_ms.get(k, 0.0) for k in ("crop", "network", "reconstruct"))
    d["detections"] = runner.tracker.stats.detections
    d["tracked_frames"] = runner.tracker.stats.tracked
    d["frames"] = tracked
    return d


def bench_per_face(rec, min_time: float = 0.5, shared: Optional[str] = None) -> Dict:
    """The tracked per-face path alone (crop + network + reconstruction + landmarks of one
    face of a 640x480 frame, from its previous landmarks), timed in a loop without the
    video threads."""
    from ..data.roi import roi_from_landmarks

    face = _face_image(shared)
    frame = np.full((480, 640, 3), 90, np.uint8)
    fh, fw = face.shape[:2]
    frame[130:130 + fh, 210:210 + fw] = face
    first = rec(frame)
    if first.faces:
        roi = roi_from_landmarks(first.faces[0].landmarks[:, :2])[None]
    else:  # untrained network or no face found: the face's box
        roi = np.array([[210.0, 130.0, 210.0 + fw, 130.0 + fh]])
    return time_call(lambda: rec.reconstruct_rois(frame, roi), min_time)


def bench_render(rec, face_sizes: Sequence[int] = (200, 300, 400), min_time: float = 0.5
                 ) -> Dict:
    """Depth and PNCC of one face into a 1080p frame, per face size: the morphable model's
    mean face at its mean pose (``param_mean``) in the crop of a YuNet-style box
    ``face_size`` px tall (0.8 as wide), rendered with :meth:`render_window` (the face's
    box only). Returns ``{size: {"face_pixels", "depth", "pncc"}}``."""
    from ..data.roi import crop_to_image
    from .detect import YuNetDetector, box_to_roi
    from .reconstructor import FaceResult

    if not rec.head.dense:
        raise ValueError("rendering needs a morphable model (dense vertices)")
    out = {}
    for fs in face_sizes:
        box = np.array([760, 340, 760 + fs * 0.8, 340 + fs, 1.0])
        roi = box_to_roi(box[None], *YuNetDetector.roi_map)[0]
        params = rec.head.param_mean.copy()
        verts = crop_to_image(rec.head.vertices(params[None]), roi[None])[0]
        f = FaceResult(box, roi, params, verts[rec.head.mm.landmarks68.numpy()],
                       np.zeros(3), 1.0, verts)
        r = {"face_pixels": int(rec.render_window([f], (1080, 1920), "depth")[1].sum())}
        for what in ("depth", "pncc"):
            r[what] = time_call(lambda: rec.render_window([f], (1080, 1920), what), min_time)
        out[str(fs)] = r
    return out
