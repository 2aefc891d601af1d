"""ICT-FaceKit (MIT) readers: the original ``FaceXModel`` OBJ folder and the converted
``ict_facekit_face_head.npz``; a small Wavefront OBJ reader.

ICT-FaceKit's ``FaceXModel/`` holds ``generic_neutral_mesh.obj`` (26,719 vertices, quads
and a few triangles, UVs), ``identity000.obj`` ... ``identity099.obj`` and one OBJ per
expression (``browDown_L.obj`` ... , 53 names listed in ``vertex_indices.json`` under
``expressions``), all on the same topology, in centimetres, y up, looking down +z.
``vertex_indices.json`` also lists the 68 landmark vertices (``idx_to_landmark_verts``,
iBUG order), the fitting and rigid vertices.

Both readers return the same dict (the layout of ``ict_facekit_face_head.npz``), cut to the
face + head/neck vertices 0 .. 11,247 (ICT's documented regions: face 0-9408, narrow face
0-6705, head and neck 9409-11247; the mouth socket, eyes, teeth, ... come after):

    vertices_neutral  (V, 3) float32        faces      (F, 4) int32, -1 pads triangles
    uvs               (U, 2) float32        faces_uv   (F, 4) int32, -1 pads triangles
    identity_deltas   (100, V, 3) float32   identity_names   (100,) str
    expression_deltas (53, V, 3) float32    expression_names (53,) str
    landmarks68 (68,) int32   fitting_vertices (K,) int32   rigid_vertices (R,) int32
    region_face, region_face_narrow, region_head_neck: (2,) int64 [start, stop)

Deltas are ``mesh - neutral``. Faces touching a vertex outside the cut, and rigid/fitting
ids outside it, are left out (that is what the cut means); landmarks must all be inside.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = ["read_obj", "read_obj_vertices", "triangulate", "load_ict_facekit",
           "ICT_REGIONS", "ICT_FACE_HEAD_VERTICES", "ICT_NUM_VERTICES"]

PathLike = Union[str, os.PathLike]

ICT_NUM_VERTICES = 26719          # full FaceXModel mesh
ICT_FACE_HEAD_VERTICES = 11248    # face + head/neck
ICT_REGIONS = {"face": (0, 9409), "face_narrow": (0, 6706), "head_neck": (9409, 11248)}

_NPZ_KEYS = ("vertices_neutral", "faces", "uvs", "faces_uv", "identity_deltas",
             "expression_deltas", "expression_names", "identity_names", "landmarks68",
             "fitting_vertices", "rigid_vertices", "region_face", "region_face_narrow",
             "region_head_neck")


def _obj_index(tok: str, count: int, path, lineno: int, what: str) -> int:
    try:
        i = int(tok)
    except ValueError:
        raise ValueError(f"read_obj: {str(path)!r} line {lineno}: bad {what} index {tok!r}") \
            from None
    if i > 0:
        i -= 1
    elif i < 0:
        i += count                      # relative to the elements read so far
    else:
        raise ValueError(f"read_obj: {str(path)!r} line {lineno}: {what} index 0 (OBJ is "
                         f"1-based)")
    if not 0 <= i < count:
        raise IndexError(f"read_obj: {str(path)!r} line {lineno}: {what} index {tok} outside "
                         f"the {count} defined so far")
    return i


def read_obj(path: PathLike) -> Dict[str, Optional[np.ndarray]]:
    """Read a Wavefront OBJ's geometry.

    Handles ``v x y z [w | r g b]`` (the first three numbers are kept), ``vt u v [w]``,
    and ``f`` with 3 or 4 corners written ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn``
    (1-based or negative relative indices). Normals, groups, materials and other
    statements carry no geometry and are skipped. Polygons with more than 4 corners raise
    ValueError (ICT-FaceKit has quads and triangles only).

    Returns:
        dict with ``vertices`` (V, 3) float32, ``uvs`` (T, 2) float32 (T may be 0),
        ``faces`` (F, 4) int32 (-1 in column 3 for triangles), ``faces_uv`` (F, 4) int32 or
        None when the faces carry no texture indices.
    """
    path = pathlib.Path(path)
    verts: List[List[float]] = []
    uvs: List[List[float]] = []
    faces: List[List[int]] = []
    faces_uv: List[List[int]] = []
    with_uv = None
    with open(path, "r", encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            if not line or line[0] not in "vf":
                continue
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            try:
                if tag == "v":
                    if len(parts) < 4:
                        raise ValueError("needs 3 coordinates")
                    verts.append([float(parts[1]), float(parts[2]), float(parts[3])])
                elif tag == "vt":
                    if len(parts) < 3:
                        raise ValueError("needs 2 coordinates")
                    uvs.append([float(parts[1]), float(parts[2])])
                elif tag == "f":
                    corners = parts[1:]
                    if not 3 <= len(corners) <= 4:
                        raise ValueError(f"{len(corners)} corners (3 or 4 supported)")
                    fv, ft = [], []
                    for c in corners:
                        sub = c.split("/")
                        fv.append(_obj_index(sub[0], len(verts), path, lineno, "vertex"))
                        has_t = len(sub) > 1 and sub[1] != ""
                        if with_uv is None:
                            with_uv = has_t
                        elif with_uv != has_t:
                            raise ValueError("some face corners have texture indices, "
                                             "others do not")
                        if has_t:
                            ft.append(_obj_index(sub[1], len(uvs), path, lineno, "texture"))
                    pad = [-1] * (4 - len(fv))
                    faces.append(fv + pad)
                    if with_uv:
                        faces_uv.append(ft + pad)
            except (ValueError, IndexError) as exc:
                if str(exc).startswith("read_obj:"):
                    raise
                raise ValueError(f"read_obj: {str(path)!r} line {lineno}: {exc}") from None
    return {
        "vertices": np.asarray(verts, np.float32).reshape(-1, 3),
        "uvs": np.asarray(uvs, np.float32).reshape(-1, 2),
        "faces": np.asarray(faces, np.int32).reshape(-1, 4),
        "faces_uv": np.asarray(faces_uv, np.int32).reshape(-1, 4) if with_uv else None,
    }


def read_obj_vertices(path: PathLike) -> np.ndarray:
    """Only the ``v`` lines of an OBJ: (V, 3) float64 (fast path for blendshape files)."""
    rows = []
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if line.startswith("v "):
                rows.append(line.split()[1:4])
    try:
        return np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    except ValueError as exc:
        raise ValueError(f"read_obj_vertices: {str(path)!r}: malformed 'v' line ({exc})") \
            from None


def triangulate(faces: np.ndarray) -> np.ndarray:
    """(F, 4) polygons (-1 in column 3 = triangle) -> (T, 3) int32 triangles.

    A quad (a, b, c, d) becomes (a, b, c), (a, c, d); order follows the input, a quad's two
    triangles consecutive. (F, 3) input is returned as int32.
    """
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] not in (3, 4) or f.dtype.kind not in "iu":
        raise ValueError(f"triangulate: argument `faces` must be integer (F, 3) or (F, 4), got "
                         f"{f.shape} {f.dtype}")
    if f.shape[1] == 3:
        return f.astype(np.int32)
    if (f[:, :3] < 0).any():
        raise ValueError("triangulate: argument `faces` has -1 outside column 3")
    quad = f[:, 3] >= 0
    out = np.empty((f.shape[0] + int(quad.sum()), 3), np.int32)
    # position of each polygon's first triangle
    start = np.arange(f.shape[0]) + np.concatenate([[0], np.cumsum(quad)[:-1]])
    out[start] = f[:, :3]
    qs = start[quad] + 1
    out[qs, 0] = f[quad, 0]
    out[qs, 1] = f[quad, 2]
    out[qs, 2] = f[quad, 3]
    return out


def _validate(d: Dict[str, np.ndarray], src: str) -> Dict[str, np.ndarray]:
    missing = [k for k in _NPZ_KEYS if k not in d]
    if missing:
        raise ValueError(f"load_ict_facekit: {src} lacks keys {missing}")
    v = d["vertices_neutral"]
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"load_ict_facekit: {src}: vertices_neutral must be (V, 3), got "
                         f"{v.shape}")
    V = v.shape[0]
    for k in ("identity_deltas", "expression_deltas"):
        a = d[k]
        if a.ndim != 3 or a.shape[1:] != (V, 3):
            raise ValueError(f"load_ict_facekit: {src}: {k} must be (K, {V}, 3), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"load_ict_facekit: {src}: {k} contains NaN or Inf")
    for k, names in (("identity_deltas", "identity_names"),
                     ("expression_deltas", "expression_names")):
        if d[names].shape != (d[k].shape[0],):
            raise ValueError(f"load_ict_facekit: {src}: {names} must have one entry per row of "
                             f"{k}")
    f = d["faces"]
    if f.ndim != 2 or f.shape[1] != 4 or f.size and (f[:, :3].min() < 0 or f.max() >= V
                                                      or f[:, 3].min() < -1):
        raise ValueError(f"load_ict_facekit: {src}: faces must be (F, 4) ids in [0, {V}) with "
                         f"-1 padding in column 3")
    if d["faces_uv"].shape != f.shape:
        raise ValueError(f"load_ict_facekit: {src}: faces_uv must have the shape of faces")
    lm = d["landmarks68"]
    if lm.shape != (68,) or lm.min() < 0 or lm.max() >= V:
        raise ValueError(f"load_ict_facekit: {src}: landmarks68 must be (68,) ids in [0, {V})")
    for k in ("region_face", "region_face_narrow", "region_head_neck"):
        r = np.asarray(d[k])
        if r.shape != (2,) or not 0 <= r[0] <= r[1] <= V:
            raise ValueError(f"load_ict_facekit: {src}: {k} must be [start, stop) within "
                             f"[0, {V}], got {r}")
    return d


def _load_folder(folder: pathlib.Path, identities: Optional[Sequence[str]],
                 expressions: Optional[Sequence[str]], progress: bool) -> Dict[str, np.ndarray]:
    from tqdm import tqdm
    neutral_path = folder / "generic_neutral_mesh.obj"
    json_path = folder / "vertex_indices.json"
    for p in (neutral_path, json_path):
        if not p.is_file():
            raise FileNotFoundError(f"load_ict_facekit: {str(p)!r} not found (expected the "
                                    f"ICT-FaceKit FaceXModel folder)")
    with open(json_path, "r", encoding="utf-8") as f:
        info = json.load(f)
    mesh = read_obj(neutral_path)
    if mesh["faces_uv"] is None:
        raise ValueError(f"load_ict_facekit: {str(neutral_path)!r} has no texture indices")
    V_all = mesh["vertices"].shape[0]
    V = ICT_FACE_HEAD_VERTICES
    if V_all < V:
        raise ValueError(f"load_ict_facekit: {str(neutral_path)!r} has {V_all} vertices, fewer "
                         f"than ICT-FaceKit's face + head ({V})")
    faces = mesh["faces"]
    inside = np.all((faces < V), axis=1)    # -1 padding counts as inside
    neutral64 = read_obj_vertices(neutral_path)
    if identities is None:
        identities = sorted(p.stem for p in folder.glob("identity[0-9][0-9][0-9].obj"))
        if not identities:
            raise FileNotFoundError(f"load_ict_facekit: no identity###.obj in {str(folder)!r}")
    if expressions is None:
        expressions = list(info.get("expressions", []))
        if not expressions:
            raise ValueError(f"load_ict_facekit: {str(json_path)!r} lists no 'expressions'")

    def deltas(names: Sequence[str], what: str) -> np.ndarray:
        out = np.empty((len(names), V, 3), np.float32)
        for i, n in enumerate(tqdm(names, desc=f"ICT {what}", disable=not progress,
                                   leave=False)):
            p = folder / f"{n}.obj"
            if not p.is_file():
                raise FileNotFoundError(f"load_ict_facekit: {what} mesh {str(p)!r} not found "
                                        f"(pass {what}=[...] to load a subset)")
            v = read_obj_vertices(p)
            if v.shape[0] != V_all:
                raise ValueError(f"load_ict_facekit: {str(p)!r} has {v.shape[0]} vertices, the "
                                 f"neutral mesh {V_all}")
            out[i] = (v[:V] - neutral64[:V]).astype(np.float32)
        return out

    lm = np.asarray(info["idx_to_landmark_verts"], np.int64)
    if lm.shape != (68,) or lm.max() >= V:
        raise ValueError(f"load_ict_facekit: idx_to_landmark_verts must be 68 ids below {V}")
    fit = np.asarray(info.get("idx_to_fitting_verts", []), np.int64)
    rig = np.asarray(info.get("idx_to_rigid_verts", []), np.int64)
    return {
        "vertices_neutral": mesh["vertices"][:V].copy(),
        "faces": faces[inside].astype(np.int32),
        "uvs": mesh["uvs"],
        "faces_uv": mesh["faces_uv"][inside].astype(np.int32),
        "identity_deltas": deltas(identities, "identities"),
        "expression_deltas": deltas(expressions, "expressions"),
        "expression_names": np.asarray(list(expressions)),
        "identity_names": np.asarray(list(identities)),
        "landmarks68": lm.astype(np.int32),
        "fitting_vertices": fit[fit < V].astype(np.int32),
        "rigid_vertices": rig[rig < V].astype(np.int32),
        "region_face": np.asarray(ICT_REGIONS["face"], np.int64),
        "region_face_narrow": np.asarray(ICT_REGIONS["face_narrow"], np.int64),
        "region_head_neck": np.asarray(ICT_REGIONS["head_neck"], np.int64),
    }


def load_ict_facekit(source: PathLike, identities: Optional[Sequence[str]] = None,
                     expressions: Optional[Sequence[str]] = None,
                     progress: bool = True) -> Dict[str, np.ndarray]:
    """ICT-FaceKit from ``ict_facekit_face_head.npz`` or from its ``FaceXModel`` folder.

    Args:
        source: the .npz (read with ``allow_pickle=False``), or the FaceXModel folder (or
            a folder containing ``FaceXModel/``).
        identities: folder only: identity mesh names to read (default all
            ``identity###.obj``, sorted).
        expressions: folder only: expression names (default ``vertex_indices.json``'s
            ``expressions``, 53).
        progress: tqdm bar over the OBJ files.

    Returns:
        The dict described in the module docstring (validated).
    """
    source = pathlib.Path(source)
    if source.is_dir():
        folder = source / "FaceXModel" if (source / "FaceXModel").is_dir() else source
        d = _load_folder(folder, identities, expressions, progress)
        return _validate(d, f"folder {str(folder)!r}")
    if not source.is_file():
        raise FileNotFoundError(f"load_ict_facekit: {str(source)!r} does not exist")
    if identities is not None or expressions is not None:
        raise ValueError("load_ict_facekit: `identities`/`expressions` select OBJ files and only "
                         "apply to a FaceXModel folder")
    try:
        with np.load(source, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise ValueError(f"load_ict_facekit: {str(source)!r} is not a plain .npz ({exc})") \
            from exc
    return _validate(d, repr(str(source)))
