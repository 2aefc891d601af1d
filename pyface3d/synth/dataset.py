"""Training on a generated folder: :class:`SynthDataset` (registry type ``"synth"``).

Items are shaped like the real-data datasets' (:mod:`pyface3d.data.datasets`), so synthetic
and real sets can be concatenated: ``image`` (3, 120, 120) float32 **BGR**
``(x - 127.5) / 128``; ``params`` (P,) float32 crop-frame 3DDFA parameters (de-whitened);
``landmarks`` (68, 2) model/crop frame (y up); ``landmarks_image`` (68, 2) image pixels;
``roi`` (4,) = ``[0, 0, size, size]``; ``yaw`` (degrees); ``name``; ``flipped``. With
``visibility=True`` also ``visible`` (68,) bool.

The whole generated image is the crop (``roi = [0, 0, size, size]``): at ``size == 120``
(the default of ``pyface3d synth``) the network sees the file's pixels unchanged and the
stored parameters; at another size the image is resampled to 120 with ``crop_method``
("exact": one ``cv2.warpAffine`` whose map is exactly the parameters' crop map, default;
"3ddfa_v2": ``cv2.resize`` as 3DDFA_V2) and the pose is rescaled to match
(:func:`pyface3d.data.convert.params_to_image_affine` then the dataset's crop), like every
real dataset. Generating at 120 avoids the resampling (and its aliasing when shrinking).
"""
from __future__ import annotations

import json
import os
from typing import Optional

import cv2
import numpy as np
import torch

from ..data.convert import params_to_image_affine
from ..data.datasets import FaceDataset
from ..data.landmarks import IBUG68_FLIP
from ..data.roi import CROP_SIZE
from .writer import read_layout

__all__ = ["SynthDataset"]


class SynthDataset(FaceDataset):
    """A folder written by :func:`pyface3d.synth.generate` / ``pyface3d synth``.

    Args:
        root: the output folder (with ``layout.json`` and ``manifest.jsonl``).
        transform: augmentation (see :class:`pyface3d.data.datasets.FaceDataset`).
        size: network input side (120).
        crop_method: "exact" (default) or "3ddfa_v2", used when the folder's size differs.
        seed: augmentation seed.
        morphable: the model the network is trained with; when given, its sha256 must be
            the one the folder was generated with (otherwise the parameters mean nothing).
        visibility: add ``visible`` (68,) bool to the items.
        limit: use only the first ``limit`` samples of the manifest.
    """

    def __init__(self, root: str, transform=None, size: int = CROP_SIZE,
                 crop_method: str = "exact", seed: int = 0, morphable=None,
                 visibility: bool = False, limit: Optional[int] = None):
        super().__init__(transform, size, crop_method, seed)
        self.root = os.fspath(root)
        lay = read_layout(self.root)
        self.layout = lay
        self.image_size = int(lay["config"]["size"])
        if "rgb" not in lay.get("modalities", []):
            raise ValueError(f"synth dataset {self.root!r}: generated without the rgb modality "
                             f"(modalities {lay.get('modalities')}); nothing to train on")
        self.ext = "." + lay.get("rgb_format", "png")
        if morphable is not None:
            want = lay["model"]["sha256"]
            have = morphable.sha256()
            if want != have:
                raise ValueError(
                    f"synth dataset {self.root!r} was generated with morphable model "
                    f"{lay['model'].get('name')!r} (sha256 {want[:12]}...) but training uses "
                    f"{getattr(morphable, 'name', '?')!r} (sha256 {have[:12]}...); its "
                    f"parameters would not match: regenerate with --morphable")
        man = os.path.join(self.root, "manifest.jsonl")
        if not os.path.isfile(man):
            raise FileNotFoundError(f"synth dataset {self.root!r}: no manifest.jsonl (rerun "
                                    f"`pyface3d synth` on it to finish and write it)")
        self.records = []
        with open(man, "r", encoding="utf-8") as f:
            for k, line in enumerate(f, 1):
                if line.strip():
                    try:
                        self.records.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{man}:{k}: not JSON: {e}") from e
        if limit is not None:
            if int(limit) < 1:
                raise ValueError(f"synth dataset: `limit` must be >= 1, got {limit}")
            self.records = self.records[:int(limit)]
        if not self.records:
            raise ValueError(f"synth dataset {self.root!r}: the manifest lists no sample")
        self.visibility = bool(visibility)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int) -> dict:
        rec = self.records[i]
        name = rec["name"]
        path = os.path.join(self.root, "rgb", name + self.ext)
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"synth dataset: cannot read image {path}")
        S = self.image_size
        if img.shape[:2] != (S, S):
            raise ValueError(f"{path}: image is {img.shape[:2]}, the layout says {S}x{S}")
        lab = os.path.join(self.root, "labels", name + ".npz")
        with np.load(lab, allow_pickle=False) as z:
            params = np.asarray(z["params"], np.float64)
            lm = np.asarray(z["landmarks"], np.float64)
            vis = np.asarray(z["visible"], bool)
        roi = np.array([0.0, 0.0, float(S), float(S)])
        s = {"frame": "image", "image": img, "roi": roi, "landmarks": lm[:, :2],
             "pose_image": params_to_image_affine(params, roi, S), "coeffs": params[12:],
             "yaw": float(rec.get("factors", {}).get("yaw", float("nan"))), "name": name}
        if self.visibility:
            s["visible"] = vis
        return s

    def __getitem__(self, i: int) -> dict:
        out = super().__getitem__(i)
        if self.visibility:
            v = np.asarray(out["visible"], bool)
            if out.get("flipped"):  # HorizontalFlip re-indexes landmarks, not this
                v = v[IBUG68_FLIP]
            out["visible"] = torch.from_numpy(np.ascontiguousarray(v))
        return out
