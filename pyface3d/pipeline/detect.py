"""Face detectors: YuNet (``cv2.FaceDetectorYN``), OpenCV's Haar cascade (offline fallback)
and boxes the caller supplies.

Every detector maps a BGR ``uint8`` image (H, W, 3) to a float64 array (K, 5)
``[x1, y1, x2, y2, score]`` in image pixels, sorted by decreasing score.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .assets import ASSETS, asset_dirs, find_asset

__all__ = ["box_to_roi", "FaceDetector", "YuNetDetector", "HaarDetector", "BoxesDetector", "make_detector",
           "check_image"]


def check_image(image, name: str = "image") -> np.ndarray:
    """Validate a frame: numpy uint8 (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA;
    returns a contiguous (H, W, 3) BGR uint8 array (grey and BGRA converted)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"argument `{name}` must be a numpy array (H, W, 3) BGR uint8 as cv2 "
                        f"reads it, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"argument `{name}` must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"argument `{name}` must have shape (H, W), (H, W, 3) or (H, W, 4), "
                         f"got {image.shape}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"argument `{name}` is too small: {image.shape}")
    return np.ascontiguousarray(image)


def box_to_roi(boxes, scale: float, dx: float, dy: float) -> np.ndarray:
    """Square crop ROIs ``[x1, y1, x2, y2]`` from detector boxes (K, 4+): side
    ``scale * (w + h) / 2``, centre ``box centre + (dx * w, dy * h)``."""
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1])[:, :4]
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    cx, cy = (b[:, 0] + b[:, 2]) / 2 + dx * w, (b[:, 1] + b[:, 3]) / 2 + dy * h
    side = scale * (w + h) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


class FaceDetector:
    """Base class: ``detect(image) -> (K, 5)``; ``roi(boxes) -> (K, 4)`` maps its boxes to
    the square crops the 3D networks expect (3DDFA_V2's landmark ROI). The base class uses
    3DDFA_V2's rule for FaceBoxes boxes (:func:`pyface3d.data.roi.roi_from_box`); detectors
    whose boxes are framed differently set ``roi_map`` = (scale, dx, dy) of
    :func:`box_to_roi`, fitted on the 300W training faces by
    ``python -m bench.calibrate_detector``."""
    name = "detector"
    roi_map = None

    def roi(self, boxes) -> np.ndarray:
        if len(boxes) == 0:
            return np.zeros((0, 4))
        if self.roi_map is None:
            from ..data.roi import roi_from_box
            return roi_from_box(np.asarray(boxes, np.float64)).reshape(-1, 4)
        return box_to_roi(boxes, *self.roi_map)

    def detect(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.detect(image)


def _downscale(image: np.ndarray, max_size: Optional[int]):
    """``image`` shrunk so that its longer side is at most ``max_size`` (None: as is), and
    the scale factor applied."""
    h, w = image.shape[:2]
    if max_size is None or max(h, w) <= max_size:
        return image, 1.0
    s = max_size / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA), s


def _sorted(boxes: np.ndarray, max_faces: Optional[int]) -> np.ndarray:
    boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")] if len(boxes) else boxes
    return boxes[:max_faces] if max_faces else boxes


class YuNetDetector(FaceDetector):
    """YuNet through ``cv2.FaceDetectorYN``.

    Args:
        model_path: the ``.onnx`` file; default :func:`pyface3d.pipeline.find_asset("yunet")`.
        score_threshold, nms_threshold, top_k: YuNet's settings.
        max_size: images whose longer side exceeds this are downscaled for detection (boxes
            are mapped back); YuNet finds faces down to ~10 px, and at 320 px a 640x480 frame
            costs about a quarter of the full-size run. None: full size.
        max_faces: keep the best ``max_faces`` (None: all).
    """
    name = "yunet"
    #: fitted on 300W train (2,012 of 2,012 found): mean IoU with the landmark ROI 0.905
    #: (3DDFA_V2's FaceBoxes rule: 0.657)
    roi_map = (1.2685, 0.0032, 0.1217)

    def __init__(self, model_path=None, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 50, max_size: Optional[int] = 640,
                 max_faces: Optional[int] = None):
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"argument `score_threshold` must be in [0, 1], got {score_threshold}")
        if max_size is not None and max_size < 32:
            raise ValueError(f"argument `max_size` must be >= 32 or None, got {max_size}")
        path = find_asset("yunet") if model_path is None else model_path
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"argument `model_path`: YuNet model {path} is not a file")
        try:
            self._det = cv2.FaceDetectorYN.create(path, "", (320, 320), float(score_threshold),
                                                  float(nms_threshold), int(top_k))
        except cv2.error as e:
            raise ValueError(f"argument `model_path`: {path} could not be loaded by "
                             f"cv2.FaceDetectorYN ({e}); expected the YuNet ONNX file "
                             f"{ASSETS['yunet'].name}") from e
        self.model_path = path
        self.max_size, self.max_faces = max_size, max_faces
        self._size = None

    def detect(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        h, w = image.shape[:2]
        image, s = _downscale(image, self.max_size)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._det.setInputSize(size)
            self._size = size
        _, faces = self._det.detect(image)
        if faces is None or len(faces) == 0:
            return np.zeros((0, 5))
        f = faces.astype(np.float64)
        sx, sy = w / size[0], h / size[1]
        out = np.stack([f[:, 0] * sx, f[:, 1] * sy, (f[:, 0] + f[:, 2]) * sx,
                        (f[:, 1] + f[:, 3]) * sy, f[:, -1]], 1)
        return _sorted(out, self.max_faces)


class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade (shipped by opencv-python(-headless) 4.x in
    ``cv2.data.haarcascades``; OpenCV 5 no longer ships it). Frontal faces only.

    ``score`` is ``n / (n + min_neighbors)`` where ``n`` is the number of raw detections
    merged into the box (cv2 ``detectMultiScale2``): a monotone confidence in [0, 1), not a
    calibrated probability.
    """
    name = "haar"
    #: fitted on 300W train (1,844 of 2,012 found): mean IoU with the landmark ROI 0.825
    #: (3DDFA_V2's FaceBoxes rule: 0.633)
    roi_map = (1.2505, 0.0058, 0.1504)

    def __init__(self, cascade_path=None, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 30, max_size: Optional[int] = 640,
                 max_faces: Optional[int] = None):
        if cascade_path is None:
            base = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if base is None:
                raise FileNotFoundError("this OpenCV build ships no Haar cascades (cv2.data is "
                                        "missing; OpenCV 5 dropped them): pass `cascade_path` "
                                        "or use the YuNet detector")
            cascade_path = os.path.join(base, "haarcascade_frontalface_default.xml")
        if not os.path.isfile(cascade_path):
            raise FileNotFoundError(f"argument `cascade_path`: {cascade_path} is not a file")
        self._det = cv2.CascadeClassifier(cascade_path)
        if self._det.empty():
            raise ValueError(f"argument `cascade_path`: {cascade_path} is not a Haar cascade")
        if scale_factor <= 1.0:
            raise ValueError(f"argument `scale_factor` must be > 1, got {scale_factor}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.max_size, self.max_faces = max_size, max_faces

    def detect(self, image: np.ndarray) -> np.ndarray:
        image = check_image(image)
        h, w = image.shape[:2]
        image, s = _downscale(image, self.max_size)
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        ms = max(8, int(self.min_size * s))
        rects, counts = self._det.detectMultiScale2(grey, scaleFactor=self.scale_factor,
                                                    minNeighbors=self.min_neighbors,
                                                    minSize=(ms, ms))
        if len(rects) == 0:
            return np.zeros((0, 5))
        r = np.asarray(rects, np.float64) / s
        n = np.asarray(counts, np.float64).reshape(-1)
        out = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3],
                        n / (n + self.min_neighbors)], 1)
        return _sorted(out, self.max_faces)


class BoxesDetector(FaceDetector):
    """Boxes the caller supplies: ``BoxesDetector(boxes)`` returns them for every image
    (``(K, 4)`` or ``(K, 5)``; score 1 when absent); ``set(boxes)`` replaces them.
    ``roi_map``: how they map to crops (default None: 3DDFA_V2's FaceBoxes rule; pass
    ``YuNetDetector.roi_map`` for YuNet-style boxes)."""
    name = "boxes"

    def __init__(self, boxes=None, roi_map=None):
        self.roi_map = roi_map
        self.set(np.zeros((0, 4)) if boxes is None else boxes)

    def set(self, boxes) -> None:
        b = np.asarray(boxes, dtype=np.float64)
        if b.ndim == 1 and b.size in (4, 5):
            b = b[None]
        if b.ndim != 2 or b.shape[1] not in (4, 5):
            raise ValueError(f"argument `boxes` must have shape (K, 4) or (K, 5) "
                             f"[x1, y1, x2, y2(, score)], got {np.shape(boxes)}")
        if not np.isfinite(b).all():
            raise ValueError("argument `boxes` has non-finite values")
        if len(b) and (np.any(b[:, 2] <= b[:, 0]) or np.any(b[:, 3] <= b[:, 1])):
            raise ValueError(f"argument `boxes` needs x2 > x1 and y2 > y1, got {b.tolist()}")
        if b.shape[1] == 4:
            b = np.concatenate([b, np.ones((len(b), 1))], 1)
        self.boxes = b

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.boxes.copy()


def make_detector(spec: Union[str, FaceDetector, Sequence, np.ndarray, None] = "auto",
                  **kwargs) -> FaceDetector:
    """A detector from a name: ``"auto"`` (YuNet when its model file is found, else Haar),
    ``"yunet"``, ``"haar"``, a path to a YuNet ``.onnx`` or a Haar ``.xml``, boxes
    (array-like (K, 4|5)), or a :class:`FaceDetector` (returned as is)."""
    if isinstance(spec, FaceDetector):
        return spec
    if spec is None:
        spec = "auto"
    if not isinstance(spec, str):
        return BoxesDetector(spec)
    if spec == "auto":
        if find_asset("yunet", required=False) is not None:
            return YuNetDetector(**kwargs)
        try:
            return HaarDetector(**{k: v for k, v in kwargs.items()
                                   if k in ("max_size", "max_faces")})
        except (FileNotFoundError, ValueError) as e:
            raise FileNotFoundError(
                "no face detector is available: the YuNet model was not found (searched "
                + ", ".join(str(d) for d in asset_dirs(ASSETS["yunet"].shared_subdir))
                + f") and the Haar fallback failed ({e}). Install opencv-python-headless 4.x, put "
                f"{ASSETS['yunet'].name} in $PYFACE3D_ASSETS, or pass face boxes") from e
    if spec == "yunet":
        return YuNetDetector(**kwargs)
    if spec == "haar":
        return HaarDetector(**kwargs)
    if spec.endswith(".onnx"):
        return YuNetDetector(model_path=spec, **kwargs)
    if spec.endswith(".xml"):
        return HaarDetector(cascade_path=spec, **kwargs)
    raise ValueError(f"argument `detector` must be 'auto', 'yunet', 'haar', a .onnx / .xml "
                     f"path, boxes or a FaceDetector, got {spec!r}")
