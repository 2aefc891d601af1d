"""Mesh export: PLY (binary little-endian or ASCII) and OBJ (vertex colours, or a UV texture
with its .mtl and PNG), plus minimal readers of what these write (for round trips)."""
from __future__ import annotations

import os
from typing import Dict, Optional, Union

import numpy as np
import torch

__all__ = ["write_ply", "write_obj", "read_ply", "read_obj", "write_png"]

PathLike = Union[str, os.PathLike]


def _np(x, dtype=None):
    if x is None:
        return None
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x.astype(dtype) if dtype is not None else x


def _colors_u8(colors):
    c = _np(colors)
    if c is None:
        return None
    if c.dtype == np.uint8:
        return c
    c = c.astype(np.float64)
    if c.size and c.max() <= 1.0 + 1e-6:
        c = c * 255.0
    return np.clip(np.round(c), 0, 255).astype(np.uint8)


def write_ply(path: PathLike, vertices, triangles, colors=None, binary: bool = True) -> str:
    """Write a PLY mesh: vertices (N, 3) float32, faces (F, 3) int32, optional per-vertex
    ``colors`` (N, 3) as uchar red/green/blue (uint8, or floats in [0, 1] or [0, 255]).
    ``binary`` -> binary_little_endian 1.0, else ascii 1.0. Returns the path."""
    v = _np(vertices, np.float32).reshape(-1, 3)
    f = _np(triangles, np.int32).reshape(-1, 3)
    c = _colors_u8(colors)
    if c is not None and c.shape != v.shape:
        raise ValueError(f"write_ply: colors must be (N, 3), got {c.shape}")
    fmt = "binary_little_endian" if binary else "ascii"
    head = ["ply", f"format {fmt} 1.0", "comment pyface3d", f"element vertex {len(v)}",
            "property float x", "property float y", "property float z"]
    if c is not None:
        head += ["property uchar red", "property uchar green", "property uchar blue"]
    head += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as fh:
        fh.write(("\n".join(head) + "\n").encode("ascii"))
        if binary:
            vd = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
            if c is not None:
                vd += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
            va = np.empty(len(v), dtype=vd)
            va["x"], va["y"], va["z"] = v[:, 0], v[:, 1], v[:, 2]
            if c is not None:
                va["red"], va["green"], va["blue"] = c[:, 0], c[:, 1], c[:, 2]
            fh.write(va.tobytes())
            fa = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
            fa["n"] = 3
            fa["i"] = f
            fh.write(fa.tobytes())
        else:
            lines = []
            for k in range(len(v)):
                s = " ".join(repr(float(x)) for x in v[k])
                if c is not None:
                    s += " %d %d %d" % tuple(c[k])
                lines.append(s)
            lines += ["3 %d %d %d" % tuple(t) for t in f]
            fh.write(("\n".join(lines) + "\n").encode("ascii"))
    return str(path)


def read_ply(path: PathLike) -> Dict[str, np.ndarray]:
    """Read a PLY written by :func:`write_ply` -> dict(vertices, triangles[, colors])."""
    with open(path, "rb") as fh:
        data = fh.read()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    binary = "format binary_little_endian 1.0" in header
    nv = int(next(h for h in header if h.startswith("element vertex")).split()[-1])
    nf = int(next(h for h in header if h.startswith("element face")).split()[-1])
    has_c = "property uchar red" in header
    out = {}
    if binary:
        vd = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
        if has_c:
            vd += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        va = np.frombuffer(data, dtype=vd, count=nv, offset=end)
        fa = np.frombuffer(data, dtype=[("n", "u1"), ("i", "<i4", (3,))], count=nf,
                           offset=end + va.nbytes)
        out["vertices"] = np.stack([va["x"], va["y"], va["z"]], 1)
        if has_c:
            out["colors"] = np.stack([va["red"], va["green"], va["blue"]], 1)
        out["triangles"] = fa["i"].astype(np.int32)
    else:
        rows = data[end:].decode("ascii").split("\n")
        vr = np.array([r.split() for r in rows[:nv]], dtype=np.float64).reshape(nv, -1)
        out["vertices"] = vr[:, :3].astype(np.float32)
        if has_c:
            out["colors"] = vr[:, 3:6].astype(np.uint8)
        out["triangles"] = np.array([r.split()[1:4] for r in rows[nv:nv + nf]],
                                    dtype=np.int32).reshape(nf, 3)
    return out


def write_png(path: PathLike, image) -> str:
    """Write an (H, W, 3) / (H, W) RGB image (uint8, or floats in [0, 1]) as PNG."""
    from PIL import Image
    a = _np(image)
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    Image.fromarray(np.ascontiguousarray(a)).save(str(path))
    return str(path)


def write_obj(path: PathLike, vertices, triangles, colors=None, uvs=None, uv_triangles=None,
              texture=None, normals=None) -> str:
    """Write a Wavefront OBJ.

    * ``colors`` (N, 3) floats in [0, 1] (uint8 is divided by 255): ``v x y z r g b``.
    * ``uvs`` (U, 2) (u right, v up, in [0, 1]) with ``uv_triangles`` (F, 3) (default:
      ``triangles``): ``vt`` lines and faces ``f v/vt ...``; with ``texture`` (H, W, 3) RGB
      (uint8 or floats in [0, 1]; a tensor (3, H, W) is accepted too) also writes
      ``<stem>.mtl`` (``map_Kd <stem>.png``) and ``<stem>.png`` next to ``path`` and a
      ``mtllib`` / ``usemtl`` pair.
    * ``normals`` (N, 3): ``vn`` lines, same index as the vertex.
    Indices in the file are 1-based. Returns the path.
    """
    v = _np(vertices, np.float64).reshape(-1, 3)
    f = _np(triangles, np.int64).reshape(-1, 3)
    c = _np(colors)
    if c is not None:
        c = c.astype(np.float64) / 255.0 if c.dtype == np.uint8 else c.astype(np.float64)
        if c.shape != v.shape:
            raise ValueError(f"write_obj: colors must be (N, 3), got {c.shape}")
    uv = _np(uvs, np.float64)
    ut = None
    if uv is not None:
        ut = f if uv_triangles is None else _np(uv_triangles, np.int64).reshape(-1, 3)
        if len(ut) != len(f):
            raise ValueError("write_obj: uv_triangles must have one row per triangle")
    vn = _np(normals, np.float64)
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    folder = os.path.dirname(os.path.abspath(str(path)))
    lines = ["# pyface3d"]
    if texture is not None:
        if uv is None:
            raise ValueError("write_obj: a texture needs uvs")
        t = texture
        if isinstance(t, torch.Tensor) and t.dim() == 3 and t.shape[0] in (1, 3) \
                and t.shape[-1] not in (1, 3):
            t = t.permute(1, 2, 0)
        write_png(os.path.join(folder, stem + ".png"), t)
        with open(os.path.join(folder, stem + ".mtl"), "w") as fh:
            fh.write(f"newmtl material0\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\n"
                     f"map_Kd {stem}.png\n")
        lines.append(f"mtllib {stem}.mtl")
    fmt = "v %.9g %.9g %.9g"
    if c is not None:
        lines += [(fmt + " %.6g %.6g %.6g") % (*v[k], *c[k]) for k in range(len(v))]
    else:
        lines += [fmt % tuple(p) for p in v]
    if vn is not None:
        lines += ["vn %.6g %.6g %.6g" % tuple(p) for p in vn]
    if uv is not None:
        lines += ["vt %.9g %.9g" % tuple(p) for p in uv]
    if texture is not None:
        lines.append("usemtl material0")
    f1 = f + 1
    if uv is not None:
        t1 = ut + 1
        if vn is not None:
            lines += ["f %d/%d/%d %d/%d/%d %d/%d/%d" % (a, ta, a, b, tb, b, cc, tc, cc)
                      for (a, b, cc), (ta, tb, tc) in zip(f1, t1)]
        else:
            lines += ["f %d/%d %d/%d %d/%d" % (a, ta, b, tb, cc, tc)
                      for (a, b, cc), (ta, tb, tc) in zip(f1, t1)]
    elif vn is not None:
        lines += ["f %d//%d %d//%d %d//%d" % (a, a, b, b, cc, cc) for a, b, cc in f1]
    else:
        lines += ["f %d %d %d" % tuple(t) for t in f1]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return str(path)


def read_obj(path: PathLike) -> Dict[str, Optional[np.ndarray]]:
    """Read a triangle OBJ (as written by :func:`write_obj`) -> dict(vertices, triangles,
    colors, uvs, uv_triangles, normals, mtllib, texture path); absent parts are None."""
    v, c, vt, vn, f, ft, mtl = [], [], [], [], [], [], None
    with open(path) as fh:
        for line in fh:
            p = line.split()
            if not p or p[0].startswith("#"):
                continue
            if p[0] == "v":
                v.append([float(x) for x in p[1:4]])
                if len(p) >= 7:
                    c.append([float(x) for x in p[4:7]])
            elif p[0] == "vt":
                vt.append([float(x) for x in p[1:3]])
            elif p[0] == "vn":
                vn.append([float(x) for x in p[1:4]])
            elif p[0] == "f":
                idx = [q.split("/") for q in p[1:4]]
                f.append([int(q[0]) - 1 for q in idx])
                if len(idx[0]) > 1 and idx[0][1]:
                    ft.append([int(q[1]) - 1 for q in idx])
            elif p[0] == "mtllib":
                mtl = os.path.join(os.path.dirname(os.path.abspath(str(path))), p[1])
    tex = None
    if mtl is not None and os.path.exists(mtl):
        for line in open(mtl):
            if line.startswith("map_Kd"):
                tex = os.path.join(os.path.dirname(mtl), line.split(None, 1)[1].strip())
    arr = lambda a, dt: np.array(a, dtype=dt) if a else None  # noqa: E731
    return dict(vertices=arr(v, np.float64), triangles=arr(f, np.int64),
                colors=arr(c, np.float64) if len(c) == len(v) and c else None,
                uvs=arr(vt, np.float64), uv_triangles=arr(ft, np.int64),
                normals=arr(vn, np.float64), mtllib=mtl, texture=tex)
