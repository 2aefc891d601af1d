"""The two landmark teachers, each cached in one resumable ``.npz`` per source.

* :func:`run_mediapipe`: MediaPipe FaceMesh (468 points) through the stand-alone
  ``mediapipe_worker.py`` in a separate virtual environment (``$PYFACE3D_MEDIAPIPE_PYTHON``).
* :func:`run_mb05`: the 3DDFA_V2 mb05 teacher (development only, never shipped) through
  :meth:`pyface3d.pipeline.FaceReconstructor.from_teacher`, YuNet detector, one re-crop from
  its own landmarks; 68 3D landmarks in image pixels.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = ["MEDIAPIPE_ENV", "mediapipe_python", "run_mediapipe", "run_mb05", "load_cache",
           "lookup", "WORKER"]

MEDIAPIPE_ENV = "PYFACE3D_MEDIAPIPE_PYTHON"
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mediapipe_worker.py")

_HOWTO = ("create one with:\n"
          "    python3 -m venv ~/venvs/mediapipe\n"
          "    ~/venvs/mediapipe/bin/pip install mediapipe==0.10.21 'numpy<2' opencv-python-headless\n"
          f"    export {MEDIAPIPE_ENV}=~/venvs/mediapipe/bin/python\n"
          "(mediapipe 0.10.x needs numpy<2, so it cannot live in pyface3d's environment)")


def mediapipe_python(python: Optional[str] = None, check: bool = True) -> str:
    """The interpreter of the MediaPipe environment: ``python`` or ``$PYFACE3D_MEDIAPIPE_PYTHON``.
    ``check`` imports mediapipe, numpy and cv2 with it once. Raises RuntimeError saying how
    to create such an environment when it is unset or broken."""
    py = python or os.environ.get(MEDIAPIPE_ENV)
    if not py:
        raise RuntimeError(f"the MediaPipe teacher needs a Python with mediapipe==0.10.21: "
                           f"${MEDIAPIPE_ENV} is not set; {_HOWTO}")
    py = os.path.expanduser(py)
    if not (os.path.isfile(py) and os.access(py, os.X_OK)):
        raise RuntimeError(f"${MEDIAPIPE_ENV} (or argument `python`) = {py} is not an "
                           f"executable file; {_HOWTO}")
    if check:
        r = subprocess.run([py, "-c", "import mediapipe, numpy, cv2; "
                            "print(mediapipe.__version__)"], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{py} cannot import mediapipe, numpy and cv2:\n"
                               f"{r.stderr.strip()[-800:]}\n{_HOWTO}")
    return py


def load_cache(path: str) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of a teacher cache ``.npz`` (None when absent)."""
    if not os.path.isfile(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def lookup(cache: Dict[str, np.ndarray], paths: Sequence[str]) -> np.ndarray:
    """Row index of each path in ``cache['paths']``; KeyError naming a missing path."""
    idx = {p: i for i, p in enumerate(cache["paths"].tolist())}
    out = np.empty(len(paths), np.int64)
    for k, p in enumerate(paths):
        if p not in idx:
            raise KeyError(f"{p} is not in the teacher cache")
        out[k] = idx[p]
    return out


def run_mediapipe(paths: Sequence[str], out: str, python: Optional[str] = None,
                  refine: bool = False, progress: bool = True, chunk: int = 200,
                  desc: str = "mediapipe") -> Dict[str, np.ndarray]:
    """FaceMesh landmarks of ``paths`` into ``out`` (.npz, resumed: cached paths are skipped),
    in one subprocess of the MediaPipe environment. Returns the cache's arrays (all paths
    ever processed into ``out``; select with :func:`lookup`)."""
    paths = [os.path.abspath(p) for p in paths]
    old = load_cache(out)
    done = set(old["paths"].tolist()) if old is not None else set()
    todo = [p for p in dict.fromkeys(paths) if p not in done]
    if todo or old is None:
        py = mediapipe_python(python)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        lst = out + ".todo.txt"
        with open(lst, "w", encoding="utf-8") as f:
            f.write("\n".join(todo) + ("\n" if todo else ""))
        cmd = [py, WORKER, "--list", lst, "--out", out, "--chunk", str(chunk), "--progress"]
        if refine:
            cmd.append("--refine")
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("GLOG_minloglevel", "2")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc=desc, unit="img", disable=not progress)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        try:
            n = 0
            for line in proc.stdout:
                if line.startswith("PROGRESS "):
                    k = int(line.split()[1])
                    bar.update(k - n)
                    n = k
            err = proc.stderr.read()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            bar.close()
        if rc != 0:
            raise RuntimeError(f"the MediaPipe worker failed (exit {rc}): {' '.join(cmd)}\n"
                               f"{err.strip()[-2000:]}")
        bad = [ln for ln in err.splitlines() if ln.startswith("warning: cannot read")]
        for ln in bad[:10]:
            print(ln, file=sys.stderr)
        os.remove(lst)
    res = load_cache(out)
    if res is None:
        raise RuntimeError(f"the MediaPipe worker wrote no {out}")
    return res


def _save_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def run_mb05(paths: Sequence[str], out: str, teacher: str, progress: bool = True,
             chunk: int = 200, threads: int = 1, desc: str = "mb05",
             reconstructor=None) -> Dict[str, np.ndarray]:
    """mb05 teacher landmarks of ``paths`` into ``out`` (.npz, resumed).

    Per image: the default (YuNet) detector, the best-scoring face (the largest among those
    within 0.05 of the best score), its detector ROI, then once more from the ROI of its own
    landmarks (``landmarks=``; docs/pipeline.md: lower error). Arrays: ``paths``, ``found``,
    ``landmarks`` (N, 68, 3) image pixels (z larger = nearer; NaN when not found), ``box``
    (N, 5) detector box, ``pose`` (N, 3) yaw, pitch, roll (deg), ``n_faces`` (N,).
    """
    import cv2
    import torch
    from tqdm import tqdm

    paths = [os.path.abspath(p) for p in paths]
    old = load_cache(out)
    keys = ("paths", "found", "landmarks", "box", "pose", "n_faces")
    empty = {"paths": np.zeros(0, str), "found": np.zeros(0, bool),
             "landmarks": np.zeros((0, 68, 3), np.float32), "box": np.zeros((0, 5), np.float32),
             "pose": np.zeros((0, 3), np.float32), "n_faces": np.zeros(0, np.int32)}
    rec = {k: old[k] for k in keys} if old is not None else empty
    done = set(rec["paths"].tolist())
    todo = [p for p in dict.fromkeys(paths) if p not in done]
    if not todo:
        if old is None:
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            _save_npz(out, rec)
        return rec
    if reconstructor is None:
        from ..pipeline import FaceReconstructor
        if not os.path.isdir(teacher):
            raise FileNotFoundError(f"argument `teacher`: {teacher} is not a folder (the "
                                    "3DDFA_V2 mb05 teacher, $PYFACE3D_SHARED/assets/teachers/"
                                    "3ddfa_v2_mb05)")
        reconstructor = FaceReconstructor.from_teacher(
            teacher, backend="onnxruntime", backend_options={"threads": threads})
    torch.set_num_threads(threads)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    buf = {k: [] for k in keys}

    def flush():
        if not buf["paths"]:
            return
        for k in keys:
            dt = None if rec[k].dtype.kind == "U" else rec[k].dtype   # str: keep length
            add = np.asarray(buf[k], dtype=dt).reshape((-1,) + rec[k].shape[1:])
            rec[k] = np.concatenate([rec[k], add], 0)
            buf[k].clear()
        _save_npz(out, rec)

    try:
        for i, p in enumerate(tqdm(todo, desc=desc, unit="img", disable=not progress)):
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            lm, box, pose, nf = None, np.full(5, np.nan), np.full(3, np.nan), 0
            if img is None:
                print(f"warning: cannot read image {p}", file=sys.stderr)
            else:
                det = reconstructor.detect(img)
                nf = len(det)
                if nf:
                    good = det[det[:, 4] >= det[0, 4] - 0.05]
                    area = (good[:, 2] - good[:, 0]) * (good[:, 3] - good[:, 1])
                    box = good[int(np.argmax(area))]
                    # pass 1: the detector's own fitted box -> ROI map
                    rois = reconstructor.detector.roi(box[None])
                    f1 = reconstructor.reconstruct_rois(img, rois, box[None])[0]
                    # pass 2 from the face's own landmarks
                    f2 = reconstructor(img, landmarks=f1.landmarks[None, :, :2]).faces[0]
                    lm, pose = f2.landmarks, f2.pose
            buf["paths"].append(p)
            buf["found"].append(lm is not None)
            buf["landmarks"].append(lm if lm is not None else np.full((68, 3), np.nan))
            buf["box"].append(box)
            buf["pose"].append(pose)
            buf["n_faces"].append(nf)
            if (i + 1) % chunk == 0:
                flush()
    finally:
        flush()
    return rec
