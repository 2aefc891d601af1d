"""Find a morphable model by name or path: ``resolve("ict")`` or ``resolve("model.npz")``."""
from __future__ import annotations

import os
import pathlib

from .model import MorphableModel

DEFAULT_ICT = "ict_face_40_10.npz"


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("PYFACE3D_CACHE", pathlib.Path.home() / ".cache" / "pyface3d"))


def _ict_sources():
    """Candidate ICT-FaceKit sources for building the default model."""
    out = []
    for env in ("PYFACE3D_ASSETS", "PYFACE3D_SHARED"):
        root = os.environ.get(env)
        if root:
            out.append(pathlib.Path(root) / "ict-facekit" / "ict_facekit_face_head.npz")
            out.append(pathlib.Path(root) / "assets" / "ict-facekit" / "ict_facekit_face_head.npz")
    repo_shared = pathlib.Path(__file__).resolve().parents[2].parent / "shared"
    out.append(repo_shared / "assets" / "ict-facekit" / "ict_facekit_face_head.npz")
    return out


def resolve(spec, device=None) -> MorphableModel:
    """``spec``: a MorphableModel (returned as is), a path to our ``.npz``, or ``"ict"``:
    the default ICT-FaceKit model (face region, 40 identity + 10 expression), taken
    from the package assets, else the cache (``$PYFACE3D_CACHE``, default
    ``~/.cache/pyface3d``), else built there from an ICT-FaceKit source found through
    ``$PYFACE3D_ASSETS`` / ``$PYFACE3D_SHARED``."""
    if isinstance(spec, MorphableModel):
        return spec if device is None else spec.to(device)
    spec = str(spec)
    if spec != "ict":
        path = pathlib.Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"morphable model {spec!r}: no such file (expected our .npz "
                                    "format, or 'ict' for the default model)")
        return MorphableModel.load(path, device=device)
    shipped = pathlib.Path(__file__).resolve().parents[1] / "assets" / DEFAULT_ICT
    if shipped.is_file():
        return MorphableModel.load(shipped, device=device)
    cached = cache_dir() / DEFAULT_ICT
    if cached.is_file():
        return MorphableModel.load(cached, device=device)
    for src in _ict_sources():
        if src.is_file():
            from .builder import build_ict_model

            cached.parent.mkdir(parents=True, exist_ok=True)
            build_ict_model(str(src), str(cached), n_id=40, n_exp=10, region="face")
            return MorphableModel.load(cached, device=device)
    raise FileNotFoundError(
        "the default morphable model 'ict' is not installed and no ICT-FaceKit source was "
        "found: set PYFACE3D_SHARED (or PYFACE3D_ASSETS) to a folder holding "
        "ict-facekit/ict_facekit_face_head.npz, or build one with `python -m "
        "pyface3d.morphable SRC OUT.npz` and pass its path")
