"""The label build: teachers -> MediaPipe 68 -> calibration on 300W train -> fusion and
rejection -> morphable fit -> ``ImageLabelsDataset`` JSON per source (docs/labels.md).

Output folder (default ``$PYFACE3D_CACHE/default_data/labels``, else
``~/.cache/pyface3d/default_data/labels``)::

    cache/<source>_mediapipe.npz, cache/<source>_mb05.npz   teacher outputs (resumable)
    cache/<source>_fit.npz                                  fits (redone when inputs change)
    fusion.json                                             fusion rule calibrated on 300W train
    <source>/labels.json                                    records (ImageLabelsDataset JSON)
    <source>/rejected.json                                  rejection log
    report.json                                             counts, NMEs, fit errors, times

Every file is written to a temporary name and renamed.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from dataclasses import asdict
from typing import Optional, Sequence

import numpy as np

from .fit import FitConfig, fit_labels
from .fusion import Fusion, calibrate, nme_interocular, box_size
from .mapping import Mp68Map, load_map, group_errors
from .teachers import lookup, run_mb05, run_mediapipe

__all__ = ["SOURCES", "default_out", "source_images", "read_gt", "teacher_landmarks",
           "calibrate_300w", "evaluate_dev", "build_source", "build", "write_json"]

#: source name -> (folder under $PYFACE3D_SHARED/data, labelled with .pts)
SOURCES = {"300w_train": ("300w/train", True), "300w_dev": ("300w/dev/lfpw_test", True),
           "lfw": ("faces/lfw", False), "utkface": ("faces/utkface", False)}
BUILD_SOURCES = ("300w_train", "lfw", "utkface")
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def default_out() -> str:
    base = os.environ.get("PYFACE3D_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "pyface3d")
    return os.path.join(base, "default_data", "labels")


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def source_images(shared: str, name: str, limit: Optional[int] = None):
    """``(root, [absolute image paths])`` of a source, sorted (``limit``: the first N)."""
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}")
    root = os.path.join(shared, "data", SOURCES[name][0])
    if not os.path.isdir(root):
        raise FileNotFoundError(f"source {name}: {root} is not a folder (argument `shared` / "
                                "--shared must be the shared data folder)")
    files = sorted(f for f in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                   if f.lower().endswith(IMAGE_EXT))
    if SOURCES[name][1]:
        files = [f for f in files if os.path.isfile(os.path.splitext(f)[0] + ".pts")]
    if not files:
        raise FileNotFoundError(f"source {name}: no images under {root}")
    if limit is not None:
        files = files[:limit]
    return root, [os.path.abspath(f) for f in files]


def read_gt(paths: Sequence[str]) -> np.ndarray:
    """(F, 68, 2) 0-based hand labels of 300W images (``.pts`` beside them, 1-based)."""
    from ..data import read_pts
    return np.stack([read_pts(os.path.splitext(p)[0] + ".pts")[:, :2] - 1.0 for p in paths])


def teacher_landmarks(name: str, paths: Sequence[str], out: str, shared: str,
                      mp_map: Mp68Map, progress: bool = True, mediapipe_python=None):
    """Both teachers on ``paths`` (cached in ``out/cache``). Returns a dict: ``mb05`` (F, 68, 3),
    ``mp68`` (F, 68, 2), ``found_mb05``, ``found_mp`` (F,) bool."""
    cache = os.path.join(out, "cache")
    os.makedirs(cache, exist_ok=True)
    mp = run_mediapipe(paths, os.path.join(cache, f"{name}_mediapipe.npz"),
                       python=mediapipe_python, progress=progress, desc=f"{name} mediapipe")
    mb = run_mb05(paths, os.path.join(cache, f"{name}_mb05.npz"),
                  os.path.join(shared, "assets", "teachers", "3ddfa_v2_mb05"),
                  progress=progress, desc=f"{name} mb05")
    i_mp, i_mb = lookup(mp, paths), lookup(mb, paths)
    mesh = mp["landmarks"][i_mp].astype(np.float64)
    return {"mb05": mb["landmarks"][i_mb].astype(np.float64), "mp68": mp_map(mesh[..., :2]),
            "found_mb05": mb["found"][i_mb].astype(bool), "found_mp": mp["found"][i_mp].astype(bool),
            "mp_padded": mp["padded"][i_mp].astype(bool)}


def calibrate_300w(t: dict, gt: np.ndarray, quantile: float = 0.95) -> Fusion:
    """Fusion weights and threshold from 300W train faces where both teachers found a face."""
    both = t["found_mb05"] & t["found_mp"]
    fu = calibrate(t["mb05"][both], t["mp68"][both], gt[both], quantile=quantile)
    fu.info["faces_total"] = int(len(gt))
    return fu


def _nme_report(pred: np.ndarray, gt: np.ndarray) -> dict:
    pred = np.asarray(pred, np.float64)[..., :2]
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    d = np.sqrt(((pred - gt) ** 2).sum(-1)) / io[:, None]
    return {"nme_io_percent": round(float(100 * d.mean()), 3),
            "nme_io_percent_inner": round(float(100 * d[:, 17:].mean()), 3),
            "nme_io_percent_jaw": round(float(100 * d[:, :17].mean()), 3),
            "groups_percent_of_box": {k: round(v, 3) for k, v in group_errors(
                pred, gt, box_size(gt)).items()}}


def evaluate_dev(t: dict, gt: np.ndarray, fusion: Fusion) -> dict:
    """NME (inter-ocular, outer eye corners) of mb05, MediaPipe's 68 and the fused landmarks
    vs the hand labels, on all faces both teachers found and on the kept ones; rejection."""
    fused, keep, agr, reason = fusion(t["mb05"], t["mp68"], t["found_mb05"], t["found_mp"])
    both = t["found_mb05"] & t["found_mp"]
    rep = {"faces": int(len(gt)), "both_found": int(both.sum()), "kept": int(keep.sum()),
           "rejection_rate": round(float(1 - keep.mean()), 4),
           "reasons": {r: int((reason == r).sum()) for r in sorted(set(reason)) if r}}
    for sel_name, sel in (("both_found", both), ("kept", keep)):
        if sel.any():
            rep[sel_name + "_nme"] = {
                "mb05": _nme_report(t["mb05"][sel][..., :2], gt[sel]),
                "mediapipe68": _nme_report(t["mp68"][sel], gt[sel]),
                "fused": _nme_report(fused[sel], gt[sel])}
    return rep


def _hash(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _fit_cached(path: str, model, targets: np.ndarray, cfg: FitConfig, progress: bool):
    key = _hash(targets, np.array([cfg.prior_id, cfg.prior_exp, cfg.jaw_weight, cfg.n_iter]))
    if os.path.isfile(path):
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return {k: z[k] for k in z.files if k != "key"}
    r = fit_labels(model, targets, cfg, progress=progress)
    d = asdict(r)
    tmp = path + ".tmp.npz"
    np.savez(tmp, key=np.array(key), **d)
    os.replace(tmp, path)
    return d


def build_source(name: str, root: str, paths: Sequence[str], t: dict, fusion: Fusion, model,
                 out: str, cfg: FitConfig, gt: Optional[np.ndarray] = None,
                 progress: bool = True) -> dict:
    """Fuse (or take ``gt``), fit, write ``out/<name>/labels.json`` + ``rejected.json``."""
    fused, keep, agr, reason = fusion(t["mb05"], t["mp68"], t["found_mb05"], t["found_mp"])
    if gt is not None:          # hand labels: every face kept, teachers only logged
        targets, keep = gt, np.ones(len(gt), bool)
    else:
        targets = fused
    idx = np.flatnonzero(keep)
    fr = _fit_cached(os.path.join(out, "cache", f"{name}_fit.npz"), model, targets[idx], cfg,
                     progress)
    recs = []
    for k, i in enumerate(idx):
        recs.append({"name": os.path.relpath(paths[i], root),
                     "params": [float(np.float32(x)) for x in fr["params"][k]],
                     "roi": [round(float(x), 3) for x in fr["roi"][k]],
                     "landmarks": np.round(targets[i], 3).tolist(),
                     "yaw": round(float(fr["yaw"][k]), 3),
                     "landmarks_fit": np.round(fr["landmarks"][k], 3).tolist(),
                     "fit_error_px": round(float(fr["error"][k]), 4),
                     "agreement": None if not np.isfinite(agr[i]) else round(float(agr[i]), 5),
                     "label_source": "hand" if gt is not None else "fused"})
    rej = [{"name": os.path.relpath(paths[i], root), "reason": str(reason[i]),
            "agreement": None if not np.isfinite(agr[i]) else round(float(agr[i]), 5)}
           for i in np.flatnonzero(reason != "")]
    write_json(os.path.join(out, name, "labels.json"), recs)
    write_json(os.path.join(out, name, "rejected.json"),
               {"source": name, "root": root, "threshold": fusion.threshold,
                "note": "hand labels are kept whatever the teachers say" if gt is not None
                else "rejected: a teacher found no face, or agreement > threshold",
                "rejected": rej})
    e, ei, z = fr["error"], fr["error_inner"], fr["z_rms"]
    size = box_size(targets[idx]) if len(idx) else np.zeros(0)
    return {"root": root, "images": len(paths), "kept": int(len(idx)),
            "teacher_rejected": int((reason != "").sum()),
            "reasons": {r: int((reason == r).sum()) for r in sorted(set(reason)) if r},
            "labels": os.path.join(out, name, "labels.json"),
            "fit_error_px_mean": round(float(e.mean()), 3) if len(e) else None,
            "fit_error_inner_px_mean": round(float(ei.mean()), 3) if len(e) else None,
            "fit_error_percent_of_box": round(float(100 * (e / size).mean()), 3) if len(e) else None,
            "fit_error_inner_percent_of_box": round(float(100 * (ei / size).mean()), 3) if len(e) else None,
            "fit_z_rms_mean": round(float(z.mean()), 3) if len(e) else None,
            "yaw_abs_percentiles_50_90_99": [round(float(x), 1) for x in np.percentile(
                np.abs(fr["yaw"]), [50, 90, 99])] if len(e) else None}


def fit_default_map(shared: str, out: str, path: Optional[str] = None, k: int = 8,
                    progress: bool = True, mediapipe_python=None) -> Mp68Map:
    """Fit the MediaPipe -> 68 map on the 300W training faces (FaceMesh cached in
    ``out/cache``) and write it to ``path`` (default: the package's ``mp68_map.json``)."""
    from .mapping import DEFAULT_MAP, fit_mapping
    from .teachers import load_cache
    root, paths = source_images(shared, "300w_train")
    mp = run_mediapipe(paths, os.path.join(out, "cache", "300w_train_mediapipe.npz"),
                       python=mediapipe_python, progress=progress, desc="300w_train mediapipe")
    i = lookup(mp, paths)
    found = mp["found"][i].astype(bool)
    mesh = mp["landmarks"][i][found].astype(np.float64)
    gt = read_gt(paths)[found]
    m = fit_mapping(mesh, gt, k, info={
        "made_by": "pyface3d labels fit-map (pyface3d.labels.build.fit_default_map)",
        "data": "300W train (AFW 337, HELEN-train 870, LFPW-train 805) hand-labelled 68, "
                ".pts 1-based minus 1; MediaPipe FaceMesh 0.10.21 static_image_mode, "
                "max_num_faces=1, refine_landmarks=False, pixel x = x_norm * W - 0.5",
        "method": "per-face Procrustes alignment of the 468 mesh points to their mean, k "
                  "candidates nearest in mean aligned distance, NNLS with a heavily weighted "
                  "sum-to-one row, renormalised",
        "faces_without_mesh": int((~found).sum())})
    pred = m(mesh[..., :2])
    m.info["train_error_percent_of_box"] = {g: round(v, 3) for g, v in
                                            group_errors(pred, gt, box_size(gt)).items()}
    m.to_json(path or DEFAULT_MAP)
    return m


def build(shared: str, out: Optional[str] = None, sources: Sequence[str] = BUILD_SOURCES,
          limit: Optional[int] = None, quantile: float = 0.95,
          fit: Optional[FitConfig] = None, morphable="ict", mp_map: Optional[str] = None,
          mediapipe_python: Optional[str] = None, evaluate: bool = True,
          progress: bool = True) -> dict:
    """The whole build (module doc). Calibration always uses all 300W training faces (the
    ``limit`` applies to the sources); 300W dev is evaluated, never fitted on."""
    import torch
    from ..morphable import resolve

    out = os.path.abspath(out or default_out())
    for s in sources:
        if s not in BUILD_SOURCES:
            raise ValueError(f"argument `sources` (--sources): unknown source {s!r}; expected "
                             f"some of {', '.join(BUILD_SOURCES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"argument `limit` (--limit) must be >= 1, got {limit}")
    torch.set_num_threads(1)
    os.makedirs(out, exist_ok=True)
    cfg = fit or FitConfig()
    mmap = load_map(mp_map)
    times, report = {}, {"out": out, "sources": {}, "fit_config": asdict(cfg)}
    t0 = time.time()
    root_tr, p_tr = source_images(shared, "300w_train")
    t_tr = teacher_landmarks("300w_train", p_tr, out, shared, mmap, progress, mediapipe_python)
    gt_tr = read_gt(p_tr)
    fusion = calibrate_300w(t_tr, gt_tr, quantile)
    write_json(os.path.join(out, "fusion.json"), fusion.to_dict())
    times["calibration_s"] = round(time.time() - t0, 1)
    both = t_tr["found_mb05"] & t_tr["found_mp"]
    report["calibration"] = {"threshold": fusion.threshold, "quantile": quantile,
                             "faces": int(both.sum()),
                             "weight_mb05_mean": round(float(fusion.weight_a.mean()), 3),
                             "train_nme": evaluate_dev(t_tr, gt_tr, fusion)}
    if evaluate:
        t1 = time.time()
        _, p_dev = source_images(shared, "300w_dev")
        t_dev = teacher_landmarks("300w_dev", p_dev, out, shared, mmap, progress,
                                  mediapipe_python)
        report["dev"] = evaluate_dev(t_dev, read_gt(p_dev), fusion)
        times["dev_s"] = round(time.time() - t1, 1)
    model = resolve(morphable)
    for s in sources:
        t1 = time.time()
        root, paths = source_images(shared, s, limit)
        t = t_tr if (s == "300w_train" and limit is None) else \
            teacher_landmarks(s, paths, out, shared, mmap, progress, mediapipe_python)
        gt = read_gt(paths) if s == "300w_train" else None
        report["sources"][s] = build_source(s, root, paths, t, fusion, model, out, cfg, gt,
                                            progress)
        times[s + "_s"] = round(time.time() - t1, 1)
    times["total_s"] = round(time.time() - t0, 1)
    report["times"] = times
    write_json(os.path.join(out, "report.json"), report)
    return report
