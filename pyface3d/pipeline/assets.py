"""Run-time assets (detector models, default weights, the morphable model): where they are
looked for, and an opt-in download with a sha256 check.

Search order for an asset file ``name``:

1. ``$PYFACE3D_ASSETS/<name>`` (a folder the user points to);
2. the package's own ``pyface3d/assets/<name>`` (what ships with the wheel);
3. the user cache ``~/.cache/pyface3d/assets/<name>`` (``$PYFACE3D_CACHE`` overrides
   ``~/.cache/pyface3d``), where :func:`download_asset` puts files;
4. ``$PYFACE3D_SHARED/assets/<subdir>/<name>`` (this project's development folder,
   default ``../shared`` beside the repository).

Nothing is downloaded implicitly: :func:`find_asset` only looks, and its error says which
folders it searched and how to get the file.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Dict, List, Optional

__all__ = ["Asset", "ASSETS", "asset_dirs", "find_asset", "download_asset", "sha256_file"]


@dataclass(frozen=True)
class Asset:
    name: str          # file name
    sha256: str        # expected checksum of the file
    url: str           # official release (used only by download_asset)
    licence: str
    shared_subdir: str  # folder under $PYFACE3D_SHARED/assets


ASSETS: Dict[str, Asset] = {
    "yunet": Asset(
        name="yunet_n_320_320.onnx",
        sha256="81dbde155e982455488235acb8ec2dec5d647edf7cf7080d33e4abb69b93a0d2",
        url="https://github.com/ShiqiYu/libfacedetection.train/raw/master/onnx/"
            "yunet_n_320_320.onnx",
        licence="Apache-2.0 (libfacedetection.train)",
        shared_subdir="detectors"),
}


def _package_dir() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parent.parent / "assets"


def _cache_dir() -> pathlib.Path:
    root = os.environ.get("PYFACE3D_CACHE")
    return (pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "pyface3d") / "assets"


def _shared_dir() -> pathlib.Path:
    root = os.environ.get("PYFACE3D_SHARED")
    if root:
        return pathlib.Path(root)
    return pathlib.Path(__file__).resolve().parents[2].parent / "shared"


def asset_dirs(subdir: str = "") -> List[pathlib.Path]:
    """The folders searched, in order."""
    dirs = []
    if os.environ.get("PYFACE3D_ASSETS"):
        dirs.append(pathlib.Path(os.environ["PYFACE3D_ASSETS"]))
    dirs += [_package_dir(), _cache_dir()]
    dirs.append(_shared_dir() / "assets" / subdir if subdir else _shared_dir() / "assets")
    return dirs


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_asset(key: str, required: bool = True) -> Optional[pathlib.Path]:
    """Path of the asset ``key`` (a key of :data:`ASSETS`, e.g. ``"yunet"``), or None /
    FileNotFoundError (``required``) naming the folders searched and what to do."""
    if key not in ASSETS:
        raise KeyError(f"unknown asset {key!r}; known: {sorted(ASSETS)}")
    a = ASSETS[key]
    dirs = asset_dirs(a.shared_subdir)
    for d in dirs:
        p = d / a.name
        if p.is_file():
            return p
    if not required:
        return None
    raise FileNotFoundError(
        f"asset {a.name} ({key}) not found; searched: " + ", ".join(str(d) for d in dirs)
        + f". Put the file in one of them, set PYFACE3D_ASSETS to its folder, or download it "
        f"(network needed) with `python -c \"from pyface3d.pipeline import download_asset; "
        f"download_asset('{key}')\"` (from {a.url}, checked against sha256 {a.sha256[:16]}...)")


def download_asset(key: str, dest_dir=None, url: Optional[str] = None) -> pathlib.Path:
    """Download asset ``key`` from its official release (or ``url``) into the user cache
    (or ``dest_dir``), verify its sha256 and move it in place atomically. A file whose
    checksum differs is deleted and reported; nothing unverified is kept."""
    a = ASSETS[key]
    d = pathlib.Path(dest_dir) if dest_dir else _cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=a.name + ".", suffix=".part")
    os.close(fd)
    try:
        with urllib.request.urlopen(url or a.url, timeout=60) as r, open(tmp, "wb") as f:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
        got = sha256_file(tmp)
        if got != a.sha256:
            raise ValueError(f"download of {a.name} from {url or a.url}: sha256 {got} differs "
                             f"from the expected {a.sha256}; the file was discarded")
        out = d / a.name
        os.replace(tmp, out)
        return out
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
