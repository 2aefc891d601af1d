"""Face profiling over a folder of labelled images (resumable; see docs/augment.md).

Output folder layout::

    out/settings.json         the settings (a rerun with other settings is refused)
    out/images/<stem>_<kk>.<ext>  view kk (00 = the input's pose) of source <stem>
    out/parts/<stem>.json     one source's view labels (written last: the "done" marker)
    out/labels.json           all view labels (ImageLabelsDataset JSON, plus visibility)
    out/labels.csv            the same as CSV
    out/manifest.json         settings, counts, source -> views

Sources keep their sub-folders (``afw/x.jpg`` -> ``images/afw/x_00.jpg``). Every file is
written atomically (temporary file + rename); a rerun skips the sources whose part file and
images exist, then rebuilds labels and manifest from all parts. Nothing depends on time or
worker count: the same inputs give the same files.
"""
from __future__ import annotations

import csv
import io
import json
import multiprocessing as mp
import os
import time
from dataclasses import asdict
from typing import Optional, Sequence

import cv2
import numpy as np

from .profile import FaceProfiler, ProfileConfig, MODES

__all__ = ["profile_folder", "read_landmark_records", "SETTINGS_FORMAT"]

SETTINGS_FORMAT = "pyface3d-face-profiling"
SETTINGS_VERSION = 1
EXTENSIONS = ("jpg", "png")


def read_landmark_records(images: str, labels: Optional[str] = None) -> list:
    """``[{"name": relative image path, "landmarks": (68, 2) 0-based pixels}, ...]`` from the
    label formats of :class:`pyface3d.data.ImageLabelsDataset` (JSON, CSV, or ``.pts``
    beside the images when ``labels`` is None); parsed by that class.

    Raises:
        FileNotFoundError: ``images`` is not a folder, ``labels`` is not a file, or an image
            named by the labels does not exist.
        ValueError: a record has no landmarks, or not 68 of them.
    """
    from ..data import ImageLabelsDataset

    if not os.path.isdir(images):
        raise FileNotFoundError(f"argument `images` (--images): {images} is not a folder")
    if labels is not None and not os.path.isfile(labels):
        raise FileNotFoundError(f"argument `labels` (--labels): {labels} is not a file")
    ds = ImageLabelsDataset(images, labels)
    out, missing = [], []
    for r in ds.records:
        where = f"{labels or images}: record {r['name']!r}"
        if "landmarks" not in r:
            raise ValueError(f"{where} has no landmarks; face profiling fits the model to 68 landmarks")
        lm = np.asarray(r["landmarks"], np.float64)
        if lm.shape[0] != 68:
            raise ValueError(f"{where} has {lm.shape[0]} landmarks, expected 68 (iBUG order)")
        if not os.path.isfile(os.path.join(images, r["name"])):
            missing.append(r["name"])
        # x, y are used; a third (z) column of 3D landmarks plays no part in a 2D fit
        out.append({"name": r["name"], "landmarks": lm[:, :2].copy()})
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) named in {labels or images} not found under "
                                f"{images}: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    return out


def _atomic_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode("utf-8")


def _encode(image: np.ndarray, ext: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + ext, image, params)
    if not ok:
        raise OSError(f"cannot encode a {image.shape} image as {ext}")
    return buf.tobytes()


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def _view_name(name: str, k: int, ext: str) -> str:
    return f"images/{_stem(name).replace(os.sep, '/')}_{k:02d}.{ext}"


def _part_path(out: str, name: str) -> str:
    return os.path.join(out, "parts", _stem(name) + ".json")


def _round(a, nd=4):
    return [round(float(x), nd) for x in np.ravel(a)]


def _view_record(name: str, k: int, v, ext: str) -> dict:
    return {"name": _view_name(name, k, ext), "source": name, "view": k,
            "yaw_delta": v.yaw_delta, "yaw": round(v.yaw, 4), "pitch": round(v.pitch, 4),
            "roll": round(v.roll, 4),
            "landmarks": [[round(float(x), 4), round(float(y), 4)] for x, y in v.landmarks],
            "visibility": [int(b) for b in v.visibility],
            "params": [float(str(np.float32(p))) for p in v.params],
            "roi": _round(v.roi),
            "filled_fraction": round(float(v.filled.mean()), 5)}


def _is_done(out: str, name: str) -> Optional[dict]:
    path = _part_path(out, name)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            part = json.load(f)
    except (OSError, ValueError):
        return None
    views = part.get("views") if isinstance(part, dict) else None
    if not views or any(not os.path.isfile(os.path.join(out, r["name"])) for r in views):
        return None
    return part


# ------------------------------------------------------------------ workers
_WORKER: dict = {}


def _init_worker(model, config, threads):
    import torch
    torch.set_num_threads(threads)
    _WORKER["profiler"] = FaceProfiler(model, config)


def _process(task) -> dict:
    """Profile one source, write its views and its part file; returns the part."""
    images, out, rec, opts = task
    prof = _WORKER["profiler"]
    path = os.path.join(images, rec["name"])
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read image {path}")
    try:
        views = prof.profile(img, rec["landmarks"], yaw_deltas=opts["yaw_deltas"], views=opts["views"],
                             yaw_step=opts["yaw_step"], mode=opts["mode"], max_yaw=opts["max_yaw"])
    except ValueError as e:
        raise ValueError(f"{rec['name']}: {e}") from e
    recs = []
    for k, v in enumerate(views):
        r = _view_record(rec["name"], k, v, opts["ext"])
        _atomic_write(os.path.join(out, r["name"]), _encode(v.image, opts["ext"]))
        recs.append(r)
    part = {"source": rec["name"], "views": recs}
    _atomic_write(_part_path(out, rec["name"]), _json_bytes(part))
    return part


def _csv_bytes(records: list, num_params: int) -> bytes:
    buf = io.StringIO()
    head = (["name", "source", "view", "yaw_delta", "yaw", "pitch", "roll"]
            + [f"param_{j}" for j in range(num_params)]
            + [f"lmk_{j}_{c}" for j in range(68) for c in "xy"]
            + [f"roi_{j}" for j in range(4)] + [f"vis_{j}" for j in range(68)])
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in records:
        w.writerow([r["name"], r["source"], r["view"], r["yaw_delta"], r["yaw"], r["pitch"], r["roll"]]
                   + r["params"] + [c for xy in r["landmarks"] for c in xy] + r["roi"] + r["visibility"])
    return buf.getvalue().encode("utf-8")


def profile_folder(images: str, out: str, labels: Optional[str] = None, *, views: int = 11,
                   yaw_step: float = 15.0, mode: str = "outward", max_yaw: float = 90.0,
                   yaw_deltas: Optional[Sequence[float]] = None, workers: int = 1,
                   ext: str = "jpg", model="ict", config: Optional[ProfileConfig] = None,
                   progress: bool = True) -> dict:
    """Profile every labelled image of a folder (see the module doc for the layout).

    Args:
        images: image folder. labels: JSON/CSV labels file (None: ``.pts`` beside images).
        out: output folder (created; reruns resume).
        views, yaw_step, mode, max_yaw, yaw_deltas: the view schedule
            (:func:`pyface3d.augment.yaw_schedule`).
        workers: processes (1: in this process).
        ext: ``"jpg"`` (quality 95) or ``"png"``.
        model: morphable model (``"ict"``, a ``.npz`` path or a MorphableModel).
        config: :class:`ProfileConfig`.
        progress: show a tqdm bar.

    Returns:
        dict with ``sources``, ``views``, ``done_before`` (skipped), ``processed``,
        ``seconds`` and the output paths.
    """
    from tqdm import tqdm

    if ext not in EXTENSIONS:
        raise ValueError(f"argument `ext` (--ext) must be one of {EXTENSIONS}, got {ext!r}")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"argument `workers` (--workers) must be a positive integer, got {workers}")
    if mode not in MODES:
        raise ValueError(f"argument `mode` (--mode) must be one of {MODES}, got {mode!r}")
    if yaw_deltas is None:
        from .profile import yaw_schedule
        yaw_schedule(0.0, views, yaw_step, mode, max_yaw)  # validates the numbers early
    config = config if config is not None else ProfileConfig()
    records = read_landmark_records(images, labels)
    stems = {}
    for r in records:
        s = _stem(r["name"])
        if s in stems:
            raise ValueError(f"images {stems[s]!r} and {r['name']!r} would write the same views "
                             f"(same name without extension)")
        stems[s] = r["name"]
    profiler = FaceProfiler(model, config)
    settings = {"format": SETTINGS_FORMAT, "version": SETTINGS_VERSION,
                "model": profiler.model.name, "model_sha256": profiler.model.sha256(),
                "views": None if yaw_deltas is not None else int(views),
                "yaw_step": None if yaw_deltas is not None else float(yaw_step),
                "mode": None if yaw_deltas is not None else mode,
                "max_yaw": None if yaw_deltas is not None else float(max_yaw),
                "yaw_deltas": None if yaw_deltas is None else [float(d) for d in yaw_deltas],
                "ext": ext, "config": asdict(config)}
    settings = json.loads(json.dumps(settings))  # tuples -> lists, as read back from the file
    os.makedirs(out, exist_ok=True)
    spath = os.path.join(out, "settings.json")
    if os.path.isfile(spath):
        with open(spath, "r", encoding="utf-8") as f:
            old = json.load(f)
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise ValueError(f"argument `out` (--out): {out} holds views made with other settings "
                             f"(differences: {diff}); use another folder or the same settings")
    else:
        _atomic_write(spath, _json_bytes(settings))

    parts = [None] * len(records)
    todo = []
    for i, r in enumerate(records):
        parts[i] = _is_done(out, r["name"])
        if parts[i] is None:
            todo.append(i)
    opts = {"views": views, "yaw_step": yaw_step, "mode": mode, "max_yaw": max_yaw,
            "yaw_deltas": None if yaw_deltas is None else list(yaw_deltas), "ext": ext}
    tasks = [(images, out, records[i], opts) for i in todo]
    t0 = time.perf_counter()
    bar = tqdm(total=len(records), initial=len(records) - len(todo), disable=not progress,
               unit="img", desc="face profiling")
    try:
        if workers == 1 or len(tasks) <= 1:
            _WORKER["profiler"] = profiler
            results = map(_process, tasks)
            for i, part in zip(todo, results):
                parts[i] = part
                bar.update(1)
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_init_worker,
                          initargs=(profiler.model, config, 1)) as pool:
                for i, part in zip(todo, pool.imap(_process, tasks)):
                    parts[i] = part
                    bar.update(1)
    finally:
        bar.close()
        _WORKER.pop("profiler", None)
    seconds = time.perf_counter() - t0

    view_recs = [r for p in parts for r in p["views"]]
    _atomic_write(os.path.join(out, "labels.json"), _json_bytes(view_recs))
    _atomic_write(os.path.join(out, "labels.csv"), _csv_bytes(view_recs, profiler.model.num_params))
    manifest = {"settings": settings, "num_sources": len(parts), "num_views": len(view_recs),
                "labels": ["labels.json", "labels.csv"],
                "sources": [{"source": p["source"], "views": [r["name"] for r in p["views"]]} for p in parts]}
    _atomic_write(os.path.join(out, "manifest.json"), _json_bytes(manifest))
    return {"sources": len(parts), "views": len(view_recs), "done_before": len(records) - len(todo),
            "processed": len(todo), "seconds": seconds,
            "seconds_per_image": seconds / len(todo) if todo else None,
            "labels_json": os.path.join(out, "labels.json"), "labels_csv": os.path.join(out, "labels.csv"),
            "manifest": os.path.join(out, "manifest.json")}
