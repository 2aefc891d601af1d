"""Face tracking for video: re-crop from the previous frame's landmarks, re-detect every N
frames or when the tracking confidence drops, One-Euro smoothing of landmarks and pose.

Tracking confidence (a heuristic in [0, 1], documented in docs/pipeline.md) of a face
tracked from its previous landmarks is the product of

* the fraction of its 68 landmarks inside the crop it was regressed from (a face leaving
  the crop pushes landmarks to the border and beyond),
* ``exp(-|log(s_new / s_prev)| / 0.25)`` where ``s`` is the side of the landmark ROI (the
  face size must not jump between frames),
* ``exp(-max(0, rms(z) - 2.5))`` of the whitened shape and expression coefficients ``z``
  (a crop without a face gives implausible coefficients).

Detected faces carry the detector's score.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ..data.roi import roi_from_landmarks
from .detect import check_image
from .reconstructor import FaceReconstructor, FaceResult, FrameResult
from .smoothing import OneEuroFilter

__all__ = ["FaceTracker", "tracking_confidence", "iou"]


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (K, 4+) and b (M, 4+) -> (K, M)."""
    a, b = np.asarray(a, np.float64)[:, None, :4], np.asarray(b, np.float64)[None, :, :4]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def tracking_confidence(face: FaceResult, prev_roi: np.ndarray, param_mean: np.ndarray,
                        param_std: np.ndarray) -> float:
    """The heuristic of the module doc for a face regressed from ``prev_roi``."""
    lm = face.landmarks[:, :2]
    x1, y1, x2, y2 = face.roi
    inside = float(np.mean((lm[:, 0] >= x1) & (lm[:, 0] <= x2) & (lm[:, 1] >= y1)
                           & (lm[:, 1] <= y2)))
    new = roi_from_landmarks(lm)
    s_new, s_prev = new[2] - new[0], prev_roi[2] - prev_roi[0]
    c_size = float(np.exp(-abs(np.log(max(s_new, 1e-6) / max(s_prev, 1e-6))) / 0.25))
    z = (face.params[12:] - param_mean[12:]) / param_std[12:]
    c_prior = float(np.exp(-max(0.0, float(np.sqrt(np.mean(z * z))) - 2.5)))
    return inside * c_size * c_prior


@dataclass
class _Track:
    id: int
    face: FaceResult            # latest (raw) result
    raw_landmarks: np.ndarray   # unsmoothed, drive the next crop
    filt_lm: OneEuroFilter
    filt_pose: OneEuroFilter
    filt_v: Optional[OneEuroFilter] = None
    misses: int = 0


@dataclass
class TrackerStats:
    frames: int = 0
    detections: int = 0
    tracked: int = 0
    timings: Dict[str, float] = field(default_factory=dict)


class FaceTracker:
    """Track faces through a video with a :class:`FaceReconstructor`.

    Args:
        reconstructor: the pipeline (its detector finds faces).
        redetect_every: run the detector at least every N frames (1 = every frame).
        min_confidence: when a tracked face's confidence falls below it, the frame is
            re-detected at once (and regressed again); a face the detector does not find
            and whose confidence stays below it is dropped.
        max_faces: track at most this many faces (best detections first).
        smooth: One-Euro smoothing of landmarks, pose (and dense vertices); the network
            always sees crops from the unsmoothed landmarks (no lag feedback).
        min_cutoff, beta: One-Euro settings (see :class:`OneEuroFilter`).
        iou_match: IoU above which a detection continues an existing track.
        dense: also regress dense vertices (for depth / PNCC / meshes).
    """

    def __init__(self, reconstructor: FaceReconstructor, redetect_every: int = 30,
                 min_confidence: float = 0.5, max_faces: Optional[int] = 4, smooth: bool = True,
                 min_cutoff: float = 1.0, beta: float = 0.05, iou_match: float = 0.3,
                 dense: bool = False):
        if redetect_every < 1:
            raise ValueError(f"argument `redetect_every` must be >= 1, got {redetect_every}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"argument `min_confidence` must be in [0, 1], got {min_confidence}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"argument `max_faces` must be >= 1 or None, got {max_faces}")
        self.rec = reconstructor
        self.redetect_every, self.min_confidence = int(redetect_every), float(min_confidence)
        self.max_faces, self.smooth, self.dense = max_faces, smooth, dense
        self.min_cutoff, self.beta, self.iou_match = min_cutoff, beta, iou_match
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (e.g. after a cut or a resolution change)."""
        self.tracks: List[_Track] = []
        self._next_id = 0
        self._since_detect = None
        self._shape = None
        self.stats = TrackerStats()

    def _new_track(self, face: FaceResult) -> _Track:
        tr = _Track(self._next_id, face, face.landmarks.copy(),
                    OneEuroFilter(self.min_cutoff, self.beta),
                    OneEuroFilter(self.min_cutoff, self.beta),
                    OneEuroFilter(self.min_cutoff, self.beta) if self.dense else None)
        self._next_id += 1
        return tr

    def _detect(self, frame, prev_rois, tm):
        td = time.perf_counter()
        det = self.rec.detect(frame)
        tm["detect"] = tm.get("detect", 0.0) + (time.perf_counter() - td) * 1e3
        self._since_detect = 0
        self.stats.detections += 1
        if self.max_faces:
            det = det[: self.max_faces]
        # match detections to tracks by IoU of the track's landmark box
        tboxes = np.array([np.r_[tr.raw_landmarks[:, :2].min(0),
                                 tr.raw_landmarks[:, :2].max(0)] for tr in self.tracks]
                          ).reshape(-1, 4)
        owner = [-1] * len(det)
        if len(det) and len(tboxes):
            m = iou(det, tboxes)
            for _ in range(min(m.shape)):
                i, j = np.unravel_index(np.argmax(m), m.shape)
                if m[i, j] < self.iou_match:
                    break
                owner[i] = j
                m[i, :] = -1
                m[:, j] = -1
        # tracks the detector missed (e.g. profiles) continue from their landmarks
        keep = [j for j, tr in enumerate(self.tracks)
                if j not in owner and tr.face.score >= self.min_confidence]
        rois = list(self.rec.detector.roi(det)) + [prev_rois[j] for j in keep]
        boxes = list(det) + [np.r_[prev_rois[j], self.tracks[j].face.score] for j in keep]
        src = [("det", owner[i]) for i in range(len(det))] + [("trk", j) for j in keep]
        return rois, boxes, src

    def update(self, frame: np.ndarray, timestamp: Optional[float] = None) -> FrameResult:
        """Process the next frame (BGR uint8); ``timestamp`` in seconds (default: the
        clock). Returns the frame's faces (smoothed when ``smooth``), with track ids."""
        frame = check_image(frame, "frame")
        t = time.perf_counter() if timestamp is None else float(timestamp)
        t0 = time.perf_counter()
        if self._shape is not None and frame.shape[:2] != self._shape:
            self.reset()  # resolution change: coordinates of old tracks are meaningless
        self._shape = frame.shape[:2]
        tm: Dict[str, float] = {}
        detect = (not self.tracks or self._since_detect is None
                  or self._since_detect + 1 >= self.redetect_every)
        prev_rois = [roi_from_landmarks(tr.raw_landmarks[:, :2]) for tr in self.tracks]
        hm = self.rec.head
        while True:
            if detect:
                rois, boxes, src = self._detect(frame, prev_rois, tm)
            else:
                self._since_detect += 1
                rois, src = prev_rois, [("trk", j) for j in range(len(self.tracks))]
                boxes = [np.r_[r, tr.face.score] for r, tr in zip(prev_rois, self.tracks)]
            faces = self.rec.reconstruct_rois(frame, np.array(rois).reshape(-1, 4),
                                              np.array(boxes).reshape(-1, 5), self.dense, tm)
            for face, (kind, j) in zip(faces, src):
                if kind == "trk":
                    face.score = tracking_confidence(face, prev_rois[j], hm.param_mean,
                                                     hm.param_std)
            if detect or all(f.score >= self.min_confidence for f in faces):
                break
            detect = True  # a tracked face was lost: re-detect in this frame
        new_tracks: List[_Track] = []
        for face, (kind, j) in zip(faces, src):
            if kind == "trk":
                tr = self.tracks[j]
                self.stats.tracked += 1
            elif j >= 0:
                tr = self.tracks[j]
            else:
                tr = self._new_track(face)
            if detect and kind == "trk" and face.score < self.min_confidence:
                continue  # lost: the detector did not find it and it no longer looks a face
            tr.face = face
            tr.raw_landmarks = face.landmarks.copy()
            new_tracks.append(tr)
        if self.max_faces:
            new_tracks = new_tracks[: self.max_faces]
        self.tracks = new_tracks
        out = []
        for tr in self.tracks:
            f = tr.face
            sm = FaceResult(f.box, f.roi, f.params, f.landmarks, f.pose, f.score, f.vertices,
                            tr.id)
            if self.smooth:
                sm.landmarks = tr.filt_lm.filter(f.landmarks, t)
                sm.pose = tr.filt_pose.filter(f.pose, t)
                if tr.filt_v is not None and f.vertices is not None:
                    sm.vertices = tr.filt_v.filter(f.vertices, t)
            out.append(sm)
        self.stats.frames += 1
        tm["total"] = (time.perf_counter() - t0) * 1e3
        for k, v in tm.items():
            self.stats.timings[k] = self.stats.timings.get(k, 0.0) + v
        return FrameResult(out, frame.shape[:2], tm)
