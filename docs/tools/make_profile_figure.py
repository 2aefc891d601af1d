"""Make the face profiling figures of docs/augment.md from scikit-image's public-domain
``astronaut`` image (NASA photograph of Eileen Collins).

Its 68 landmarks come from a face box of OpenCV's YuNet detector and the 3DDFA_V2 mb05
teacher network (used here only to label this figure; neither ships with pyface3d):

    PYTHONPATH=. PYFACE3D_SHARED=../shared python docs/tools/make_profile_figure.py \
        [--shared ../shared] [--out docs/images]

Writes ``profile_astronaut.jpg`` (input + views, landmarks green = visible, red = hidden)
and ``profile_meshing.jpg`` (the anchor mesh, and which pixels of a view were mirrored or
inpainted).
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np
import torch


def astronaut_landmarks(img_bgr: np.ndarray, shared: str) -> np.ndarray:
    from pyface3d.data import crop_image, crop_to_image, normalize_image, roi_from_box
    from pyface3d.eval import load_teacher

    h, w = img_bgr.shape[:2]
    det = cv2.FaceDetectorYN.create(os.path.join(shared, "assets/detectors/yunet_n_320_320.onnx"), "", (w, h))
    _, faces = det.detect(img_bgr)
    if faces is None or len(faces) == 0:
        raise RuntimeError("YuNet found no face in the astronaut image")
    x, y, bw, bh = faces[np.argmax(faces[:, -1]), :4]
    roi = roi_from_box([x, y, x + bw, y + bh])
    crop = crop_image(img_bgr, roi, 120, "3ddfa_v2")
    teacher = load_teacher(os.path.join(shared, "assets/teachers/3ddfa_v2_mb05"))
    lm = teacher(normalize_image(crop)[None])  # (1, 68, 3) crop frame
    return crop_to_image(lm.numpy(), roi[None])[0, :, :2]


def draw(img, lm, vis, label=None, size=256, box=None):
    """Landmarks (green visible, red hidden) on ``img``, cut to ``box`` [x1, y1, x2, y2]."""
    im = img.copy()
    r = 1
    if box is not None:
        x1, y1, x2, y2 = (int(round(b)) for b in box)
        im = im[y1:y2, x1:x2].copy()
        lm = lm - [x1, y1]
    s = size / max(im.shape[:2])
    im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    for (x, y), ok in zip(lm * s, vis):
        cv2.circle(im, (int(round(x)), int(round(y))), r + 1, (0, 220, 0) if ok else (0, 0, 255), -1)
    if label:
        cv2.putText(im, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3)
        cv2.putText(im, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return im


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.environ.get("PYFACE3D_SHARED", "../shared"))
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from skimage import data

    from pyface3d.augment import FaceProfiler
    from pyface3d.augment import profile as prof_mod

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    lm = astronaut_landmarks(img, args.shared)
    prof = FaceProfiler("ict")
    # keep the anchor mesh of the source view for the second figure
    captured = {}
    build = prof_mod.build_anchor_mesh

    def spy(*a, **k):
        captured["anchors"] = out = build(*a, **k)
        captured["mask"] = a[0]
        return out

    prof_mod.build_anchor_mesh = spy
    try:
        views = prof.profile(img, lm, views=11, yaw_step=15)
    finally:
        prof_mod.build_anchor_mesh = build
    views = sorted(views, key=lambda v: v.yaw)
    # show the head: a square of 2.2 landmark-box sides around the landmarks
    c = (lm.min(0) + lm.max(0)) / 2
    half = 1.1 * np.ptp(lm, 0).max()
    box = np.clip([c[0] - half, c[1] - half, c[0] + half, c[1] + half], 0, img.shape[1])
    tiles = [draw(img, lm, np.ones(68, bool), "input", box=box)]
    tiles += [draw(v.image, v.landmarks, v.visibility, f"yaw {v.yaw:+.0f} ({v.yaw_delta:+.0f})", box=box)
              for v in views]
    while len(tiles) % 4:
        tiles.append(np.full_like(tiles[0], 255))
    sheet = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    os.makedirs(args.out, exist_ok=True)
    cv2.imwrite(os.path.join(args.out, "profile_astronaut.jpg"), sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])

    a = captured["anchors"]
    mesh_im = img.copy()
    m = captured["mask"]
    mesh_im[m] = (0.6 * mesh_im[m] + 0.4 * np.array([0, 200, 0])).astype(np.uint8)
    for t in a.triangles:
        cv2.polylines(mesh_im, [np.round(a.points[t, :2]).astype(np.int32)], True, (0, 255, 255), 1)
    for k, col in ((0, (0, 0, 255)), (1, (255, 0, 0)), (-1, (255, 0, 255))):
        for x, y in a.points[a.kind == k, :2] if k != 1 else a.points[a.kind > 0, :2]:
            cv2.circle(mesh_im, (int(round(x)), int(round(y))), 3, col, -1)
    v = min(views, key=lambda v: v.yaw_delta)  # the largest turn toward the unseen side
    marks = v.image.copy()
    marks[v.mirrored] = (0.4 * marks[v.mirrored] + 0.6 * np.array([255, 255, 0])).astype(np.uint8)
    marks[v.filled] = (255, 0, 255)
    fig = np.hstack([draw(mesh_im, lm, np.ones(68, bool), "face mesh + anchors", 512),
                     draw(marks, v.landmarks, v.visibility, f"{v.yaw_delta:+.0f}: mirrored / inpainted", 512,
                          box=box)])
    cv2.imwrite(os.path.join(args.out, "profile_meshing.jpg"), fig, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print("landmarks (first 3):", np.round(lm[:3], 1).tolist())
    print("views:", [(round(v.yaw_delta), round(v.yaw, 1), int(v.visibility.sum())) for v in views])


if __name__ == "__main__":
    main()
