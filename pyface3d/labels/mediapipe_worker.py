"""MediaPipe FaceMesh teacher worker: a stand-alone script for a separate virtual environment.

mediapipe 0.10.x needs numpy < 2, so it cannot be imported next to pyface3d's torch stack.
This script imports only the standard library, numpy, cv2 and mediapipe (never pyface3d or
torch); ``pyface3d.labels.teachers.run_mediapipe`` runs it with the interpreter named by
``$PYFACE3D_MEDIAPIPE_PYTHON``.

    python mediapipe_worker.py --list paths.txt --out facemesh.npz [--refine] [--chunk 200]

``paths.txt``: one image path per line. ``facemesh.npz`` (written atomically every
``--chunk`` images and at the end; a rerun skips the paths already in it):

* ``paths`` (N,) str, ``found`` (N,) bool, ``size`` (N, 2) int32 image height, width;
* ``landmarks`` (N, V, 3) float32, V = 468 (478 with ``--refine``: iris points): x, y in
  0-based image pixels (pixel centres at integers: ``x = x_norm * W - 0.5``), z scaled like
  x (``z_norm * W``; MediaPipe's z: smaller = nearer the camera, origin near the head's
  centre); NaN where ``found`` is false;
* ``padded`` (N,) bool: the face was found only after padding the image (see below);
* ``refine`` (), ``mediapipe_version`` ().

FaceMesh runs with ``static_image_mode=True, max_num_faces=1``. When it finds no face on
the image, it is retried once on the image with a 25 % constant border on each side (tight
face crops such as UTKFace's confuse its detector); coordinates are mapped back.
Unreadable images are recorded as not found (the path is printed to stderr).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


def _load(out: str):
    if not os.path.isfile(out):
        return None
    with np.load(out, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save(out: str, rec: dict) -> None:
    tmp = out + ".tmp.npz"
    np.savez(tmp, **rec)
    os.replace(tmp, out)


def _mesh(fm, rgb: np.ndarray):
    res = fm.process(rgb)
    if not res.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    pts = np.array([[p.x, p.y, p.z] for p in res.multi_face_landmarks[0].landmark], np.float64)
    return np.stack([pts[:, 0] * w - 0.5, pts[:, 1] * h - 0.5, pts[:, 2] * w], 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", required=True, help="text file, one image path per line")
    ap.add_argument("--out", required=True, help="output .npz (resumed when present)")
    ap.add_argument("--refine", action="store_true", help="refine_landmarks=True (478 points)")
    ap.add_argument("--chunk", type=int, default=200, help="save every N images")
    ap.add_argument("--pad", type=float, default=0.25,
                    help="border (fraction of each side) for the retry; 0 = no retry")
    ap.add_argument("--progress", action="store_true", help="print 'PROGRESS done total' lines")
    a = ap.parse_args(argv)
    if a.chunk < 1:
        ap.error("argument --chunk must be >= 1")
    if a.pad < 0:
        ap.error("argument --pad must be >= 0")

    import cv2
    import mediapipe as mp

    with open(a.list, "r", encoding="utf-8") as f:
        paths = [ln.rstrip("\n") for ln in f if ln.strip()]
    nv = 478 if a.refine else 468
    old = _load(a.out)
    rec = {"paths": np.zeros(0, str), "found": np.zeros(0, bool),
           "size": np.zeros((0, 2), np.int32), "landmarks": np.zeros((0, nv, 3), np.float32),
           "padded": np.zeros(0, bool)}
    if old is not None:
        if bool(old["refine"]) != a.refine:
            print(f"error: {a.out} was written with refine={bool(old['refine'])}; use another "
                  "--out or the same --refine", file=sys.stderr)
            return 2
        rec = {k: old[k] for k in rec}
    done = set(rec["paths"].tolist())
    todo = [p for p in dict.fromkeys(paths) if p not in done]
    meta = {"refine": np.array(a.refine), "mediapipe_version": np.array(mp.__version__)}
    buf = {k: [] for k in rec}

    def flush():
        if not buf["paths"]:
            return
        for k in rec:
            dt = None if rec[k].dtype.kind == "U" else rec[k].dtype   # str: keep length
            add = np.asarray(buf[k], dtype=dt).reshape((-1,) + rec[k].shape[1:])
            rec[k] = np.concatenate([rec[k], add], 0)
            buf[k].clear()
        _save(a.out, {**rec, **meta})

    total = len(todo)
    print(f"PROGRESS 0 {total}", flush=True) if a.progress else None
    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=a.refine,
                                         min_detection_confidence=0.5)
    t0 = time.time()
    try:
        for i, p in enumerate(todo):
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            lm, size, padded = None, (0, 0), False
            if img is None:
                print(f"warning: cannot read image {p}", file=sys.stderr)
            else:
                size = img.shape[:2]
                rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
                lm = _mesh(fm, rgb)
                if lm is None and a.pad > 0:
                    py, px = int(round(a.pad * size[0])), int(round(a.pad * size[1]))
                    big = cv2.copyMakeBorder(rgb, py, py, px, px, cv2.BORDER_CONSTANT, value=0)
                    lm = _mesh(fm, big)
                    if lm is not None:
                        lm[:, 0] -= px
                        lm[:, 1] -= py
                        padded = True
            buf["paths"].append(p)
            buf["found"].append(lm is not None)
            buf["size"].append(size)
            buf["landmarks"].append(lm if lm is not None else np.full((nv, 3), np.nan))
            buf["padded"].append(padded)
            if (i + 1) % a.chunk == 0:
                flush()
            if a.progress:
                print(f"PROGRESS {i + 1} {total}", flush=True)
    finally:
        flush()
        fm.close()
    if old is None and not total:
        _save(a.out, {**rec, **meta})
    dt = time.time() - t0
    print(f"done {total} images in {dt:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
