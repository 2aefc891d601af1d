"""Face datasets (torch ``Dataset``s returning dicts of tensors; see docs/data.md).

Every item (after :class:`~pyface3d.data.transforms.ToNetworkInput`) has ``image``
(3, 120, 120) float32, **BGR** (as cv2 reads it and as 3DDFA_V2 feeds its network),
``(x - 127.5) / 128``; ``roi`` (4,) float32 ``[x1, y1, x2, y2]`` in the original image;
``yaw`` (degrees, NaN if unknown); ``name``; ``flipped``; and where the dataset knows them
``params`` (62,) crop-frame 3DDFA parameters (de-whitened) and ``landmarks`` (68, 2|3) in the
model/crop frame (y up) plus ``landmarks_image`` (0-based image pixels).
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Optional, Sequence

import cv2
import numpy as np
import scipy.io as sio
from torch.utils.data import Dataset

from .convert import pose_para_to_image_affine
from .landmarks import read_pts
from .roi import CROP_SIZE, roi_from_box, roi_from_landmarks
from .transforms import Compose, Crop, ToNetworkInput, normalize_image

__all__ = ["FaceDataset", "LP300WDataset", "AFLW2000Dataset", "AFLWDataset", "ImageLabelsDataset",
           "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def _imread(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return img


def _split_transforms(transform):
    ts = transform.transforms if isinstance(transform, Compose) else ([] if transform is None else [transform])
    for t in ts:
        if getattr(t, "stage", None) not in ("image", "crop"):
            raise ValueError(f"transform {t!r} has stage {getattr(t, 'stage', None)!r}; datasets take "
                             f"'image'-stage (CropJitter) and 'crop'-stage transforms (the dataset crops "
                             f"and converts to tensors itself)")
    return [t for t in ts if t.stage == "image"], [t for t in ts if t.stage == "crop"]


class FaceDataset(Dataset):
    """Base class: ``load(i)`` returns an image-frame sample (see
    :mod:`pyface3d.data.transforms`); ``__getitem__`` applies the image-stage transforms, the
    crop, the crop-stage transforms and :class:`ToNetworkInput`, with
    ``rng = numpy.random.default_rng((seed, epoch, i))``."""

    def __init__(self, transform=None, size: int = CROP_SIZE, crop_method: str = "3ddfa_v2", seed: int = 0):
        self._pre, self._post = _split_transforms(transform)
        self.crop = Crop(size, crop_method)
        self.seed, self.epoch = int(seed), 0
        self.to_tensor = ToNetworkInput()

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call once per epoch)."""
        self.epoch = int(epoch)

    def load(self, i: int) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {type(self).__name__} of length {len(self)}")
        i = i % len(self)
        rng = np.random.default_rng((self.seed, self.epoch, i))
        s = self.load(i)
        for t in self._pre:
            s = t(s, rng)
        s = self.crop(s)
        for t in self._post:
            s = t(s, rng)
        return self.to_tensor(s)


def _find_pairs(root: str, label_ext: str) -> list[tuple[str, str]]:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"`root` {root} is not a folder")
    pairs = []
    for d, _, files in os.walk(root):
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTENSIONS and os.path.isfile(os.path.join(d, stem + label_ext)):
                pairs.append((os.path.join(d, f), os.path.join(d, stem + label_ext)))
    pairs.sort()
    if not pairs:
        raise FileNotFoundError(f"no image with a matching {label_ext} file under {root}")
    return pairs


def _load_mat(path: str) -> dict:
    try:
        return sio.loadmat(path)
    except Exception as e:  # scipy raises several types for bad files
        raise OSError(f"cannot read .mat file {path}: {e}") from e


def _mat_model(mat: dict, path: str, height: int, num_shape: int, num_exp: int):
    """(pose_image (3, 4), coeffs) from Pose_Para/Shape_Para/Exp_Para, or (None, None)."""
    if not all(k in mat for k in ("Pose_Para", "Shape_Para", "Exp_Para")):
        return None, None
    shp = np.asarray(mat["Shape_Para"], np.float64).ravel()
    exp = np.asarray(mat["Exp_Para"], np.float64).ravel()
    if shp.size < num_shape or exp.size < num_exp:
        raise ValueError(f"{path}: {shp.size} shape / {exp.size} expression coefficients, need {num_shape} / {num_exp}")
    return pose_para_to_image_affine(mat["Pose_Para"], height), np.concatenate([shp[:num_shape], exp[:num_exp]])


class LP300WDataset(FaceDataset):
    """300W-LP: every ``*.jpg`` under ``root`` with a ``.mat`` of the same stem (``Pose_Para``,
    ``Shape_Para``, ``Exp_Para``, ``pt2d``).

    Landmarks: ``pt2d`` (2, 68), 1-based Matlab pixels -> 0-based (``- 1``). ROI: 3DDFA_V2's
    ``parse_roi_box_from_landmark`` of ``pt2d``. Params: ``[crop pose | Shape_Para[:40] |
    Exp_Para[:10]]`` (:func:`pyface3d.data.convert.params_from_300wlp`). Yaw: ``Pose_Para[1]``
    in degrees (the fitted model's yaw; sign as stored).

    Args:
        root: folder (searched recursively).
        transform: transforms (see :class:`FaceDataset`); size, crop_method, seed: as there.
        num_shape, num_exp: coefficients kept (40, 10).
    """

    def __init__(self, root: str, transform=None, size: int = CROP_SIZE, crop_method: str = "3ddfa_v2",
                 seed: int = 0, num_shape: int = 40, num_exp: int = 10):
        super().__init__(transform, size, crop_method, seed)
        self.root, self.num_shape, self.num_exp = root, num_shape, num_exp
        self.items = _find_pairs(root, ".mat")

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> dict:
        img_path, mat_path = self.items[i]
        img = _imread(img_path)
        mat = _load_mat(mat_path)
        if "pt2d" not in mat:
            raise KeyError(f"{mat_path}: no 'pt2d'")
        pt = np.asarray(mat["pt2d"], np.float64)
        if pt.shape != (2, 68):
            raise ValueError(f"{mat_path}: pt2d has shape {pt.shape}, expected (2, 68)")
        lm = pt.T - 1.0
        pose, coeffs = _mat_model(mat, mat_path, img.shape[0], self.num_shape, self.num_exp)
        if pose is None:
            raise KeyError(f"{mat_path}: needs Pose_Para, Shape_Para and Exp_Para")
        yaw = math.degrees(float(np.ravel(mat["Pose_Para"])[1]))
        return {"frame": "image", "image": img, "roi": roi_from_landmarks(lm), "landmarks": lm,
                "pose_image": pose, "coeffs": coeffs, "yaw": yaw,
                "name": os.path.relpath(img_path, self.root)}


class AFLW2000Dataset(FaceDataset):
    """AFLW2000-3D: ``*.jpg`` + ``.mat`` with ``pt3d_68`` (3, 68) and ``Pose_Para``.

    3DDFA's benchmark protocol: landmarks = ``pt3d_68`` (1-based -> 0-based x, y; z as
    stored), ROI from them with ``roi_from_landmarks(..., matlab_rounding=True)`` (the
    rounding of 3DDFA's ``benchmarkCrop.m``), 120x120 crop, yaw = ``Pose_Para[1]`` in degrees
    for the |yaw| buckets. ``params`` when the ``.mat`` also has ``Shape_Para``/``Exp_Para``.
    Evaluation data: don't augment it.
    """

    def __init__(self, root: str, transform=None, size: int = CROP_SIZE, crop_method: str = "3ddfa_v2",
                 seed: int = 0, matlab_rounding: bool = True, num_shape: int = 40, num_exp: int = 10):
        super().__init__(transform, size, crop_method, seed)
        self.root, self.matlab_rounding = root, matlab_rounding
        self.num_shape, self.num_exp = num_shape, num_exp
        self.items = _find_pairs(root, ".mat")
        self._with_params = None

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> dict:
        img_path, mat_path = self.items[i]
        img = _imread(img_path)
        mat = _load_mat(mat_path)
        for k in ("pt3d_68", "Pose_Para"):
            if k not in mat:
                raise KeyError(f"{mat_path}: no {k!r}")
        pt = np.asarray(mat["pt3d_68"], np.float64)
        if pt.shape != (3, 68):
            raise ValueError(f"{mat_path}: pt3d_68 has shape {pt.shape}, expected (3, 68)")
        lm = pt.T.copy()
        lm[:, :2] -= 1.0
        s = {"frame": "image", "image": img, "roi": roi_from_landmarks(lm, self.matlab_rounding), "landmarks": lm,
             "yaw": math.degrees(float(np.ravel(mat["Pose_Para"])[1])), "name": os.path.relpath(img_path, self.root)}
        pose, coeffs = _mat_model(mat, mat_path, img.shape[0], self.num_shape, self.num_exp)
        has = pose is not None
        if self._with_params is None:
            self._with_params = has
        elif has != self._with_params:
            raise ValueError(f"{mat_path}: some .mat files have Shape_Para/Exp_Para and others don't")
        if has:
            s["pose_image"], s["coeffs"] = pose, coeffs
        return s


class AFLWDataset(Dataset):
    """AFLW test crops (the ``aflw-dev`` layout): ``root/images/<name>`` (120x120 crops) and
    ``root/labels.npz`` (``names``, ``pts21`` (N, 2, 21) original-image coordinates, ``yaw``
    degrees, ``roi_box`` (N, 4), ``source_index``), read with ``allow_pickle=False``.

    Items: ``image`` (3, 120, 120) float32 BGR normalised; ``pts21`` (21, 2) float32 as
    stored (invisible points keep their placeholder values: x = -1); ``visible`` (21,) bool
    (x != -1 and y != -1); ``roi`` (4,); ``yaw``; ``name``; ``source_index``.
    Evaluation only (no transforms).
    """

    def __init__(self, root: str, size: int = CROP_SIZE):
        path = os.path.join(root, "labels.npz")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found")
        with np.load(path, allow_pickle=False) as d:
            missing = {"names", "pts21", "yaw", "roi_box"} - set(d.files)
            if missing:
                raise KeyError(f"{path}: missing {sorted(missing)}")
            self.names = [str(n) for n in d["names"]]
            self.pts21 = np.asarray(d["pts21"], np.float32)
            self.yaw = np.asarray(d["yaw"], np.float32)
            self.roi_box = np.asarray(d["roi_box"], np.float32)
            self.source_index = np.asarray(d["source_index"]) if "source_index" in d.files else np.arange(len(self.names))
        n = len(self.names)
        if self.pts21.shape != (n, 2, 21) or self.yaw.shape != (n,) or self.roi_box.shape != (n, 4):
            raise ValueError(f"{path}: inconsistent shapes names {n}, pts21 {self.pts21.shape}, "
                             f"yaw {self.yaw.shape}, roi_box {self.roi_box.shape}")
        self.root, self.size = root, int(size)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        import torch
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for AFLWDataset of length {len(self)}")
        i = i % len(self)
        img = _imread(os.path.join(self.root, "images", self.names[i]))
        if img.shape[:2] != (self.size, self.size):
            raise ValueError(f"{self.names[i]}: image is {img.shape[:2]}, expected a {self.size}x{self.size} crop")
        pts = self.pts21[i].T.copy()
        return {"image": normalize_image(img), "pts21": torch.from_numpy(pts),
                "visible": torch.from_numpy((pts[:, 0] != -1) & (pts[:, 1] != -1)),
                "roi": torch.from_numpy(self.roi_box[i].copy()), "yaw": float(self.yaw[i]),
                "name": self.names[i], "source_index": int(self.source_index[i])}


def _float_list(v, what: str) -> np.ndarray:
    try:
        return np.asarray([float(x) for x in v], np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: not a list of numbers") from e


class ImageLabelsDataset(FaceDataset):
    """A folder of images with labels.

    Labels (``labels`` path), one record per image, any of these groups per record:

    * ``params``: P values (crop-frame 3DDFA parameters for the record's ``roi``; a ``roi``
      is then required);
    * ``landmarks``: 68 x (x, y) 0-based image pixels;
    * ``roi``: ``[x1, y1, x2, y2]``; ``box``: a detector box (-> :func:`roi_from_box`).

    JSON: a list of objects ``{"name": ..., "params": [...], "landmarks": [[x, y], ...],
    "roi": [...], "box": [...], "yaw": deg}``. CSV: a header with ``name`` and the column
    groups ``param_0..param_{P-1}``, ``lmk_0_x, lmk_0_y, ..., lmk_67_y``, ``roi_0..roi_3``,
    ``box_0..box_3``, ``yaw`` (a group present must be complete; empty cells are errors).
    Without ``labels``: every image with a 300W ``.pts`` beside it (1-based, converted to
    0-based). ROI priority: ``roi``, then ``box``, then the landmarks (3DDFA_V2 rule); a
    record with none of them is an error (nothing is dropped silently).
    """

    def __init__(self, root: str, labels: Optional[str] = None, transform=None, size: int = CROP_SIZE,
                 crop_method: str = "3ddfa_v2", seed: int = 0):
        super().__init__(transform, size, crop_method, seed)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"`root` {root} is not a folder")
        self.root = root
        if labels is None:
            self.records = [{"name": os.path.relpath(img, root), "landmarks": read_pts(pts) - 1.0}
                            for img, pts in _find_pairs(root, ".pts")]
        elif labels.lower().endswith(".json"):
            with open(labels, "r", encoding="utf-8") as f:
                raw = json.load(f)
            if not isinstance(raw, list):
                raise ValueError(f"{labels}: expected a JSON list of records")
            self.records = [self._record(r, f"{labels}[{k}]") for k, r in enumerate(raw)]
        elif labels.lower().endswith(".csv"):
            self.records = self._read_csv(labels)
        else:
            raise ValueError(f"`labels` must be a .json or .csv file, got {labels}")
        if not self.records:
            raise ValueError(f"no records in {labels or root}")
        kinds = {("params" in r, "landmarks" in r) for r in self.records}
        if len(kinds) != 1:
            raise ValueError("all records must have the same label groups (params / landmarks)")
        for r in self.records:
            if "params" in r and "roi" not in r:
                raise ValueError(f"record {r['name']}: `params` are crop-frame values and need a `roi`")
            if not any(k in r for k in ("roi", "box", "landmarks")):
                raise ValueError(f"record {r['name']}: no roi, box or landmarks to crop with")

    @staticmethod
    def _record(r: dict, where: str) -> dict:
        if not isinstance(r, dict) or "name" not in r:
            raise ValueError(f"{where}: a record needs a 'name'")
        out = {"name": str(r["name"])}
        if r.get("params") is not None:
            out["params"] = _float_list(r["params"], f"{where}.params")
        if r.get("landmarks") is not None:
            lm = np.asarray(r["landmarks"], np.float64)
            if lm.ndim != 2 or lm.shape[1] not in (2, 3):
                raise ValueError(f"{where}.landmarks: expected (K, 2|3), got {lm.shape}")
            out["landmarks"] = lm
        for k in ("roi", "box"):
            if r.get(k) is not None:
                v = _float_list(r[k], f"{where}.{k}")
                if v.shape != (4,):
                    raise ValueError(f"{where}.{k}: expected 4 values, got {v.shape}")
                out[k] = v
        if r.get("yaw") is not None:
            out["yaw"] = float(r["yaw"])
        return out

    def _read_csv(self, path: str) -> list:
        with open(path, "r", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            return []
        cols = list(rows[0].keys())
        if "name" not in cols:
            raise ValueError(f"{path}: needs a 'name' column")
        n_par = sum(c.startswith("param_") for c in cols)
        n_lmk = sum(c.startswith("lmk_") for c in cols)
        if n_lmk % 2:
            raise ValueError(f"{path}: lmk_* columns must come in x/y pairs")
        recs = []
        for k, row in enumerate(rows):
            where = f"{path} row {k + 2}"
            try:
                r = {"name": row["name"]}
                if n_par:
                    r["params"] = [row[f"param_{j}"] for j in range(n_par)]
                if n_lmk:
                    r["landmarks"] = [[float(row[f"lmk_{j}_x"]), float(row[f"lmk_{j}_y"])] for j in range(n_lmk // 2)]
                for g in ("roi", "box"):
                    if f"{g}_0" in row:
                        r[g] = [row[f"{g}_{j}"] for j in range(4)]
                if row.get("yaw") not in (None, ""):
                    r["yaw"] = row["yaw"]
            except (KeyError, ValueError) as e:
                raise ValueError(f"{where}: incomplete or bad column group ({e})") from e
            recs.append(self._record(r, where))
        return recs

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> dict:
        r = self.records[i]
        img = _imread(os.path.join(self.root, r["name"]))
        if "roi" in r:
            roi = r["roi"]
        elif "box" in r:
            roi = roi_from_box(r["box"])
        else:
            roi = roi_from_landmarks(r["landmarks"])
        s = {"frame": "image", "image": img, "roi": np.asarray(roi, np.float64), "name": r["name"],
             "yaw": r.get("yaw", float("nan"))}
        if "landmarks" in r:
            s["landmarks"] = r["landmarks"]
        if "params" in r:
            from .convert import params_to_image_affine
            s["pose_image"] = params_to_image_affine(r["params"], s["roi"], self.crop.size)
            s["coeffs"] = r["params"][12:]
        return s
