"""Writing a generated folder: per-sample files, the manifest, the layout; resumable.

Layout of ``OUT`` (see docs/synth.md)::

    OUT/layout.json             configuration, model checksum, encodings, label ids, names
    OUT/README.md               the same in words
    OUT/manifest.jsonl          one JSON line per complete sample, in index order
    OUT/rgb/NAME.png|.jpg       final image (8-bit RGB)
    OUT/depth/NAME.png          16-bit: round((z + depth_offset) * depth_scale), 0 = background
    OUT/pncc/NAME.png           8-bit RGB: round(255 * NCC (x, y, z)), 0 = background
    OUT/normals/NAME.png        8-bit RGB: round(255 * (n + 1) / 2), 0 = background
    OUT/albedo/NAME.png         8-bit RGB: round(255 * albedo), 0 = background
    OUT/shading/NAME.png        16-bit RGB: round(16384 * shading), 0 = background
    OUT/seg/NAME.png            8-bit labels (regions.SEG_LABELS)
    OUT/landmarks/NAME.txt      68 lines "name visibility x y"
    OUT/labels/NAME.npz         params, landmarks (68, 3), visible, self_visible, sh, ...
    OUT/meta/NAME.json          the sample's manifest record; written last (completion mark)

Every file is written to a temporary name and renamed, and ``meta/NAME.json`` is written
after all the others: a sample counts as done only when its record exists (and its files do),
so an interrupted run leaves no half sample behind; rerunning regenerates what is missing.
"""
from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import time
import zipfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np

from .config import SHADING_SCALE, SynthConfig
from .regions import SEG_LABELS

__all__ = ["generate", "write_sample", "sample_files", "is_complete", "read_layout",
           "LANDMARK_NAMES", "LAYOUT_VERSION", "write_npz", "read_landmarks"]

LAYOUT_VERSION = 1


def _landmark_names() -> List[str]:
    """iBUG 68 names; right / left are the subject's (iBUG: 0..7 and 17..21 on the image
    left of a frontal face)."""
    names = [f"jaw_{k:02d}" for k in range(1, 18)]
    names += [f"right_brow_{k}" for k in range(1, 6)] + [f"left_brow_{k}" for k in range(1, 6)]
    names += [f"nose_bridge_{k}" for k in range(1, 5)] + [f"nose_base_{k}" for k in range(1, 6)]
    names += [f"right_eye_{k}" for k in range(1, 7)] + [f"left_eye_{k}" for k in range(1, 7)]
    names += [f"outer_lip_{k:02d}" for k in range(1, 13)]
    names += [f"inner_lip_{k}" for k in range(1, 9)]
    return names


#: landmark names of the .txt files, in iBUG order (index i = iBUG point i, 0-based)
LANDMARK_NAMES = _landmark_names()
_EXT = {"rgb": None, "depth": ".png", "pncc": ".png", "normals": ".png", "albedo": ".png",
        "shading": ".png", "seg": ".png"}


def sample_files(out_dir: str, name: str, cfg: SynthConfig) -> Dict[str, str]:
    """Paths of every file of sample ``name`` (the modalities chosen, landmarks, labels)."""
    out = {}
    for m in cfg.modalities:
        ext = ("." + cfg.format) if m == "rgb" else _EXT[m]
        out[m] = os.path.join(out_dir, m, name + ext)
    out["landmarks"] = os.path.join(out_dir, "landmarks", name + ".txt")
    out["labels"] = os.path.join(out_dir, "labels", name + ".npz")
    return out


def _meta_path(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, "meta", name + ".json")


def is_complete(out_dir: str, name: str, cfg: SynthConfig) -> bool:
    """Whether sample ``name`` was written completely (its record and all its files)."""
    return os.path.isfile(_meta_path(out_dir, name)) and all(
        os.path.isfile(p) for p in sample_files(out_dir, name, cfg).values())


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode(ext: str, img: np.ndarray, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    if not ok:
        raise RuntimeError(f"synth: OpenCV could not encode a {ext} image")
    return buf.tobytes()


def write_npz(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """An ``.npz`` (readable by ``numpy.load``) with a fixed timestamp, so identical arrays
    give identical bytes; written atomically."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for k in sorted(arrays):
            b = io.BytesIO()
            np.lib.format.write_array(b, np.ascontiguousarray(arrays[k]), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0)),
                       b.getvalue())
    _atomic_write(path, buf.getvalue())


def read_landmarks(path: str):
    """A landmark ``.txt`` file -> (names list, visibility (68,) bool, xy (68, 2) float64)."""
    names, vis, xy = [], [], []
    with open(path, "r", encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"{path}:{k}: expected 'name visibility x y', got {line!r}")
            names.append(parts[0])
            vis.append(parts[1] == "1")
            xy.append((float(parts[2]), float(parts[3])))
    return names, np.array(vis, bool), np.array(xy, np.float64).reshape(-1, 2)


def encode_depth(sample, cfg: SynthConfig) -> np.ndarray:
    """16-bit depth image of a sample (see the module doc); raises if a depth falls outside
    the encodable range (it cannot for the validated configurations)."""
    q, off = cfg.depth_scale, cfg.depth_offset
    out = np.zeros(sample.depth.shape, np.uint16)
    v = np.rint((sample.depth[sample.mask].astype(np.float64) + off) * q)
    if v.size and (v.min() < 1 or v.max() > 65535):
        raise ValueError(f"synth: sample {sample.name}: depth outside the 16-bit range "
                         f"(offset {off}, scale {q})")
    out[sample.mask] = v.astype(np.uint16)
    return out


def write_sample(out_dir: str, sample, cfg: SynthConfig, model_sha256: str = "") -> None:
    """Write all files of ``sample`` (a :class:`SynthSample`), the record last."""
    files = sample_files(out_dir, sample.name, cfg)
    m3 = sample.mask[..., None]
    for mod, path in files.items():
        if mod == "rgb":
            bgr = np.ascontiguousarray(sample.rgb[..., ::-1])
            data = (_encode(".png", bgr, (cv2.IMWRITE_PNG_COMPRESSION, 1)) if cfg.format == "png"
                    else _encode(".jpg", bgr, (cv2.IMWRITE_JPEG_QUALITY, cfg.jpg_quality)))
        elif mod == "depth":
            data = _encode(".png", encode_depth(sample, cfg), (cv2.IMWRITE_PNG_COMPRESSION, 1))
        elif mod in ("pncc", "albedo"):
            a = getattr(sample, mod)
            img = np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8) * m3
            data = _encode(".png", np.ascontiguousarray(img[..., ::-1]),
                           (cv2.IMWRITE_PNG_COMPRESSION, 1))
        elif mod == "normals":
            img = np.rint((sample.normals + 1) * 127.5).astype(np.uint8) * m3
            data = _encode(".png", np.ascontiguousarray(img[..., ::-1]),
                           (cv2.IMWRITE_PNG_COMPRESSION, 1))
        elif mod == "shading":
            s = sample.shading
            if s.size and float(s.max()) * SHADING_SCALE > 65535:
                raise ValueError(f"synth: sample {sample.name}: shading above the 16-bit range")
            img = np.rint(s * SHADING_SCALE).astype(np.uint16)
            data = _encode(".png", np.ascontiguousarray(img[..., ::-1]),
                           (cv2.IMWRITE_PNG_COMPRESSION, 1))
        elif mod == "seg":
            data = _encode(".png", sample.seg, (cv2.IMWRITE_PNG_COMPRESSION, 1))
        elif mod == "landmarks":
            lines = [f"{n} {int(v)} {x:.3f} {y:.3f}\n" for n, v, (x, y) in
                     zip(LANDMARK_NAMES, sample.visible, sample.landmarks[:, :2].tolist())]
            data = "".join(lines).encode("ascii")
        elif mod == "labels":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_npz(path, {
                "params": sample.params, "landmarks": sample.landmarks,
                "visible": sample.visible, "self_visible": sample.self_visible,
                "sh": sample.sh, "size": np.int64(cfg.size),
                "depth_offset": np.int64(cfg.depth_offset),
                "depth_scale": np.int64(cfg.depth_scale)})
            continue
        else:  # pragma: no cover - sample_files only lists the above
            raise AssertionError(mod)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write(path, data)
    rec = record(sample, cfg, model_sha256)
    os.makedirs(os.path.join(out_dir, "meta"), exist_ok=True)
    _atomic_write(_meta_path(out_dir, sample.name),
                  (json.dumps(rec, sort_keys=True) + "\n").encode("utf-8"))


def record(sample, cfg: SynthConfig, model_sha256: str = "") -> Dict[str, Any]:
    """The manifest line of a sample."""
    return {"name": sample.name, "index": sample.index, "seed": cfg.seed,
            "model": model_sha256, "factors": sample.factors}


# ---------------------------------------------------------------------- layout
def layout(cfg: SynthConfig, model) -> Dict[str, Any]:
    return {
        "format": "pyface3d-synth", "version": LAYOUT_VERSION,
        "config": cfg.identity(), "fingerprint": cfg.fingerprint(),
        "model": {"name": getattr(model, "name", ""), "sha256": model.sha256(),
                  "num_params": int(model.num_params), "I": int(model.I), "E": int(model.E)},
        "modalities": list(cfg.modalities), "rgb_format": cfg.format,
        "encodings": {
            "rgb": "8-bit RGB (final image)",
            "depth": {"dtype": "uint16", "z": "value / depth_scale - depth_offset",
                      "depth_scale": cfg.depth_scale, "depth_offset": cfg.depth_offset,
                      "background": 0, "units": "pixels, larger is nearer"},
            "pncc": "uint8 RGB = round(255 * NCC (x, y, z)); 0 background",
            "normals": "uint8 RGB = round(255 * (n + 1) / 2), image frame x right, y down, "
                       "z toward the camera; 0 background",
            "albedo": "uint8 RGB = round(255 * albedo); 0 background",
            "shading": {"dtype": "uint16 RGB", "value": f"round({SHADING_SCALE} * E(n) / pi)"},
            "seg": {"dtype": "uint8", "labels": {str(k): v for k, v in SEG_LABELS.items()}},
        },
        "landmarks": {"file": "landmarks/NAME.txt", "line": "name visibility x y",
                      "names": LANDMARK_NAMES,
                      "frame": "0-based image pixels, x right, y down"},
        "labels": {"file": "labels/NAME.npz",
                   "arrays": {"params": "(P,) float32 3DDFA crop parameters of the image",
                              "landmarks": "(68, 3) float32 image x, y, z",
                              "visible": "(68,) bool", "self_visible": "(68,) bool",
                              "sh": "(9, 3) float32 SH radiance, image frame",
                              "size": "int", "depth_offset": "int", "depth_scale": "int"}},
        "names": "NAME = zero-padded sample index (6 digits)",
    }


def read_layout(out_dir: str) -> Dict[str, Any]:
    path = os.path.join(out_dir, "layout.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"synth: {out_dir!r} has no layout.json (not a folder written "
                                f"by `pyface3d synth`)")
    with open(path, "r", encoding="utf-8") as f:
        d = json.load(f)
    if d.get("format") != "pyface3d-synth" or d.get("version") != LAYOUT_VERSION:
        raise ValueError(f"synth: {path} is not a version-{LAYOUT_VERSION} pyface3d-synth "
                         f"layout (format {d.get('format')!r}, version {d.get('version')!r})")
    return d


_README_ROWS = {
    "rgb": "| rgb/ | final image ({fmt}) |",
    "depth": "| depth/ | 16-bit PNG, z = value / {q} - {off} (pixels, larger nearer), "
             "0 = background |",
    "pncc": "| pncc/ | projected NCC, 8-bit RGB = (x, y, z) of the mean-shape code |",
    "normals": "| normals/ | 8-bit RGB = (n + 1) / 2, image frame (x right, y down, z to the "
               "camera) |",
    "albedo": "| albedo/ | 8-bit RGB |",
    "shading": "| shading/ | 16-bit RGB = {ss} x Lambertian SH shading |",
    "seg": "| seg/ | 8-bit labels: {labels} |",
}
_README = """# Synthetic faces (pyface3d synth)

Generated by `pyface3d synth` (see docs/synth.md in pyface3d). Config and encodings:
`layout.json`. One line per sample in `manifest.jsonl` (sampled factors).

| folder | content |
|---|---|
{rows}
| landmarks/ | 68 lines `name visibility x y` (0-based pixels) |
| labels/ | npz: params (3DDFA, crop = the image), landmarks (68, 3), visible, sh |
| meta/ | one JSON record per sample (written last) |

Model: {model} (sha256 {sha}).
"""


def _prepare(out_dir: str, cfg: SynthConfig, model) -> Dict[str, Any]:
    os.makedirs(out_dir, exist_ok=True)
    lay = layout(cfg, model)
    path = os.path.join(out_dir, "layout.json")
    if os.path.isfile(path):
        old = read_layout(out_dir)
        if old.get("fingerprint") != lay["fingerprint"] or \
                old.get("model", {}).get("sha256") != lay["model"]["sha256"]:
            oc, nc = old.get("config", {}), lay["config"]
            diff = sorted(k for k in set(oc) | set(nc) if oc.get(k) != nc.get(k))
            if old.get("model", {}).get("sha256") != lay["model"]["sha256"]:
                diff.append("morphable model")
            raise ValueError(f"synth: {out_dir!r} was generated with another configuration "
                             f"(differs in: {', '.join(diff)}); use another --out folder")
        return old
    _atomic_write(path, (json.dumps(lay, indent=1, sort_keys=True) + "\n").encode())
    labels = ", ".join(f"{k} {v}" for k, v in SEG_LABELS.items())
    rows = "\n".join(_README_ROWS[m] for m in cfg.modalities).format(
        fmt=cfg.format, q=cfg.depth_scale, off=cfg.depth_offset, ss=SHADING_SCALE,
        labels=labels)
    readme = _README.format(rows=rows, model=lay["model"]["name"],
                            sha=lay["model"]["sha256"][:16])
    _atomic_write(os.path.join(out_dir, "README.md"), readme.encode())
    return lay


def write_manifest(out_dir: str) -> int:
    """Rebuild ``manifest.jsonl`` from the records in ``meta/`` (index order). Returns the
    number of lines."""
    d = os.path.join(out_dir, "meta")
    names = sorted((f for f in os.listdir(d) if f.endswith(".json") and f[:-5].isdigit()),
                   key=lambda f: int(f[:-5])) if os.path.isdir(d) else []
    lines = []
    for f in names:
        with open(os.path.join(d, f), "rb") as fh:
            lines.append(fh.read().rstrip(b"\n") + b"\n")
    _atomic_write(os.path.join(out_dir, "manifest.jsonl"), b"".join(lines))
    return len(lines)


# ---------------------------------------------------------------------- generation
_WORKER: Dict[str, Any] = {}


def _init_worker(model, cfg: SynthConfig, out_dir: str, sha: str) -> None:
    import torch

    from .synthesizer import FaceSynthesizer

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER["synth"] = FaceSynthesizer(model, cfg)
    _WORKER["out"], _WORKER["sha"] = out_dir, sha


def _work(index: int) -> int:
    s = _WORKER["synth"].sample(index)
    write_sample(_WORKER["out"], s, _WORKER["synth"].config, _WORKER["sha"])
    return index


def generate(out_dir: str, n: int, config: Optional[SynthConfig] = None,
             model: Union[str, Any] = "ict", workers: int = 1, progress: bool = True,
             indices: Optional[Sequence[int]] = None,
             callback: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Generate samples ``0 .. n-1`` (or ``indices``) into ``out_dir``; skip complete ones.

    ``workers`` > 1 uses a pool of spawned processes (one torch thread each); the files do
    not depend on it. A script calling this with ``workers > 1`` needs the usual
    ``if __name__ == "__main__":`` guard (multiprocessing's spawn start method re-imports the
    main module). ``callback(index)`` runs in the calling process after each sample is
    written. Returns counts and timing. Interrupting is safe: rerun to finish.
    """
    import torch

    from ..morphable import resolve

    cfg = config if config is not None else SynthConfig()
    if not isinstance(cfg, SynthConfig):
        raise TypeError(f"generate: argument `config` must be a SynthConfig, got "
                        f"{type(cfg).__name__}")
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"generate: argument `n` must be an integer >= 0, got {n!r}")
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"generate: argument `workers` must be an integer >= 1, got "
                         f"{workers!r}")
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ValueError(f"generate: argument `out_dir` must be a folder path, got {out_dir!r}")
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"generate: argument `out_dir` {out_dir!r} exists and is not a folder")
    idx = list(range(int(n))) if indices is None else [int(i) for i in indices]
    if any(i < 0 for i in idx):
        raise ValueError("generate: argument `indices` must be >= 0")
    if cfg.backgrounds is not None:
        from .background import list_images
        list_images(cfg.backgrounds)
    mm = resolve(model) if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__") \
        else model
    _prepare(out_dir, cfg, mm)
    sha = mm.sha256()
    todo = [i for i in idx if not is_complete(out_dir, f"{i:06d}", cfg)]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(idx), initial=len(idx) - len(todo), unit="face",
                   desc=f"synth {os.path.basename(os.path.abspath(out_dir))}")
    try:
        if workers == 1 or len(todo) <= 1:
            threads = torch.get_num_threads()
            cv_threads = cv2.getNumThreads()
            try:
                _init_worker(mm, cfg, out_dir, sha)
                for i in todo:
                    _work(i)
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(i)
            finally:
                torch.set_num_threads(threads)
                cv2.setNumThreads(cv_threads)
                _WORKER.clear()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(int(workers), initializer=_init_worker,
                          initargs=(mm, cfg, out_dir, sha)) as pool:
                chunk = max(1, min(8, len(todo) // (4 * int(workers))))
                for i in pool.imap_unordered(_work, todo, chunksize=chunk):
                    if bar is not None:
                        bar.update(1)
                    if callback is not None:
                        callback(i)
    finally:
        if bar is not None:
            bar.close()
        total = write_manifest(out_dir)
    dt = time.perf_counter() - t0
    return {"out": out_dir, "requested": len(idx), "generated": len(todo),
            "skipped": len(idx) - len(todo), "manifest_lines": total, "seconds": dt,
            "samples_per_s": (len(todo) / dt) if todo and dt > 0 else 0.0}
