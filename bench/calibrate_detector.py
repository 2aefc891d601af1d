"""Fit the detector-box -> crop-ROI map of a detector to 300W training faces:
``python -m bench.calibrate_detector [--detector yunet|haar] [--n 2012]``.

The 3D networks are trained on crops from 3DDFA_V2's landmark rule
(:func:`pyface3d.data.roi.roi_from_landmarks`); at inference a face's first crop comes from
a detector box, so the box should map to (about) the same square. The map is
``side = s * (w + h) / 2``, ``centre = box centre + (dx * w, dy * h)``; the least-squares
fit (medians for robustness) over the faces the detector finds is printed, with the mean
IoU of the resulting ROI with the landmark ROI, before (3DDFA_V2's FaceBoxes rule) and after.
Uses $PYFACE3D_SHARED/data/300w/train (never the dev or test faces).
"""
from __future__ import annotations

import argparse
import glob
import os

import cv2
import numpy as np
from tqdm import tqdm

from pyface3d.data import read_pts
from pyface3d.data.roi import roi_from_box, roi_from_landmarks
from pyface3d.pipeline.detect import make_detector
from pyface3d.pipeline.tracking import iou


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detector", default="yunet")
    p.add_argument("--n", type=int, default=2012)
    args = p.parse_args(argv)
    root = os.path.join(os.environ.get("PYFACE3D_SHARED", "../shared"), "data", "300w", "train")
    files = sorted(glob.glob(os.path.join(root, "*", "*.jpg")) +
                   glob.glob(os.path.join(root, "*", "*.png")))[: args.n]
    if not files:
        p.error(f"no 300W training images under {root}")
    det = make_detector(args.detector)
    rows = []
    for f in tqdm(files, desc="detect"):
        img = cv2.imread(f)
        gt = read_pts(os.path.splitext(f)[0] + ".pts") - 1
        b = det.detect(img)
        if not len(b):
            continue
        target = roi_from_landmarks(gt)
        k = int(np.argmax(iou(b, target[None])[:, 0]))
        if iou(b[k:k + 1], target[None])[0, 0] < 0.2:
            continue
        rows.append((b[k, :4], target))
    B = np.array([r[0] for r in rows])
    T = np.array([r[1] for r in rows])
    w, h = B[:, 2] - B[:, 0], B[:, 3] - B[:, 1]
    side_t = T[:, 2] - T[:, 0]
    s = np.median(side_t / ((w + h) / 2))
    dx = np.median(((T[:, 0] + T[:, 2]) / 2 - (B[:, 0] + B[:, 2]) / 2) / w)
    dy = np.median(((T[:, 1] + T[:, 3]) / 2 - (B[:, 1] + B[:, 3]) / 2) / h)
    cx, cy = (B[:, 0] + B[:, 2]) / 2 + dx * w, (B[:, 1] + B[:, 3]) / 2 + dy * h
    side = s * (w + h) / 2
    fit = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    base = roi_from_box(B)
    iou_fit = np.mean([iou(fit[i:i + 1], T[i:i + 1])[0, 0] for i in range(len(T))])
    iou_base = np.mean([iou(base[i:i + 1], T[i:i + 1])[0, 0] for i in range(len(T))])
    print(f"{args.detector}: {len(rows)} of {len(files)} faces found")
    print(f"  scale s = {s:.4f}, dx = {dx:.4f}, dy = {dy:.4f}")
    print(f"  mean IoU with the landmark ROI: 3DDFA_V2 box rule {iou_base:.3f}, fitted "
          f"{iou_fit:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
