"""Basel Face Model readers: 3DDFA's ``bfm_noneck_v3.pkl`` and Basel's BFM2009 ``.mat``.

BFM is for academic use only; users supply the files. Nothing here downloads anything.

3DDFA (``bfm_noneck_v3.pkl`` of 3DDFA / 3DDFA_V2): a pickled dict read with a restricted
unpickler (:mod:`._safe_pickle`); keys used:

    u          (3N, 1) or (3N,)   mean shape (+ mean expression), interleaved, micrometres
    w_shp      (3N, K >= I)       identity basis (first I columns are kept)
    w_exp      (3N, K >= E)       expression basis (first E columns are kept)
    tri        (3, F) or (F, 3)   triangles (0-based in 3DDFA_V2; 1-based detected)
    keypoints  (204,)             68 landmarks as interleaved row ids 3v, 3v+1, 3v+2

Other keys are not used (their names are recorded in ``metadata['ignored_keys']``).
3DDFA_V2 ships a re-built triangle list for ``bfm_noneck_v3.pkl`` in ``configs/tri.pkl``;
pass it as ``tri=``. Whitening: 3DDFA_V2's ``param_mean_std_62d_120x120.pkl`` (dict with
``mean`` and ``std``, (62,)), read with the same restricted unpickler.

BFM2009 (``01_MorphableModel.mat`` of the Basel Face Model 2009, MATLAB v5 file read with
scipy.io.loadmat): ``shapeMU`` (3N, 1), ``shapePC`` (3N, 199), ``shapeEV`` (199, 1; the
standard deviations of the components), ``tl`` (F, 3), 1-based. Optional expression basis
``.mat``, one of:

    w_exp (3N', K) [+ mu_exp (3N', 1)]            3DDFA's Model_Expression.mat
    exp_pc (3N', K) [+ exp_ev (K, 1)] [+ exp_mu]  PCA with standard deviations exp_ev

An expression mean is added to the shape mean. When the expression basis covers fewer
vertices than BFM2009 (3DDFA's expression basis lives on BFM2009 minus its ear/neck
trimmings: 53,215 of 53,490 vertices), pass ``trim_index`` (face3d's ``trimIndex``,
1-based vertex ids into BFM2009, or a .mat file holding it) and the shape is reduced to
those vertices first. The 68 landmarks are not part of BFM2009: pass ``landmarks68``
(0-based vertex ids in the final numbering) or ``keypoints`` (204 interleaved row ids).
"""
from __future__ import annotations

import os
import pathlib
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ._safe_pickle import safe_load_pickle
from .model import MorphableModel, NUM_POSE_PARAMS

__all__ = ["load_3ddfa_bfm", "load_3ddfa_param_mean_std", "load_bfm2009",
           "keypoints_to_landmarks"]

PathLike = Union[str, os.PathLike]


def _fmt(a) -> str:
    return str(tuple(np.shape(a)))


def _column(name: str, a: Any, n3: Optional[int] = None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1 or a.dtype.kind not in "iuf" or (n3 is not None and a.shape[0] != n3):
        want = f"({n3}, 1) or ({n3},)" if n3 else "(3N, 1) or (3N,)"
        raise ValueError(f"argument/key `{name}` must be numeric with shape {want}, got "
                         f"{_fmt(a)} {a.dtype}")
    return a.astype(np.float64)


def _basis(name: str, a: Any, n3: int, k: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != n3 or a.dtype.kind not in "iuf":
        raise ValueError(f"key `{name}` must be numeric with shape ({n3}, K), got "
                         f"{_fmt(a)} {a.dtype}")
    if k > a.shape[1]:
        raise ValueError(f"{k} components requested but `{name}` has only {a.shape[1]}")
    return a[:, :k].astype(np.float64)


def _triangles(name: str, tri: Any, N: int, base: Optional[int]) -> Tuple[np.ndarray, int]:
    """(3, F) or (F, 3) integer-valued -> (F, 3) int32 0-based; base None = detect."""
    t = np.asarray(tri)
    if t.ndim != 2 or 3 not in t.shape:
        raise ValueError(f"`{name}` must have shape (F, 3) or (3, F), got {_fmt(t)}")
    if t.shape[1] != 3:          # (3, F) with F != 3
        t = t.T
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
            raise ValueError(f"`{name}` must hold integer vertex ids")
    elif t.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be numeric, got dtype {t.dtype}")
    t = t.astype(np.int64)
    lo, hi = (int(t.min()), int(t.max())) if t.size else (0, 0)
    if base is None:
        if lo == 0 and hi <= N - 1:
            base = 0
        elif lo >= 1 and hi == N:
            base = 1
        else:
            raise ValueError(f"`{name}`: cannot tell 0- from 1-based ids (min {lo}, max {hi}, "
                             f"N = {N}); pass tri_base=0 or 1")
    if base not in (0, 1):
        raise ValueError(f"argument `tri_base` must be 0, 1 or None, got {base}")
    t = t - base
    if t.size and (t.min() < 0 or t.max() >= N):
        raise IndexError(f"`{name}` (base {base}) has vertex ids outside [0, {N})")
    return np.ascontiguousarray(t.astype(np.int32)), base


def keypoints_to_landmarks(keypoints: Any, N: Optional[int] = None) -> np.ndarray:
    """3DDFA ``keypoints`` (204,) interleaved row ids [3v, 3v+1, 3v+2, ...] -> (68,) vertex
    ids. Raises ValueError when the rows are not such triples."""
    k = np.asarray(keypoints)
    if k.ndim == 2 and 1 in k.shape:
        k = k.reshape(-1)
    if k.shape != (204,) or k.dtype.kind not in "iuf":
        raise ValueError(f"argument `keypoints` must have shape (204,) (68 x/y/z row ids), got "
                         f"{_fmt(k)}")
    k = k.astype(np.int64)
    tri = k.reshape(68, 3)
    if not (np.all(tri[:, 0] % 3 == 0) and np.all(tri[:, 1] == tri[:, 0] + 1)
            and np.all(tri[:, 2] == tri[:, 0] + 2)):
        raise ValueError("argument `keypoints` must be interleaved row ids 3v, 3v+1, 3v+2 per "
                         "landmark")
    lm = tri[:, 0] // 3
    if N is not None and (lm.min() < 0 or lm.max() >= N):
        raise IndexError(f"argument `keypoints` points at vertices outside [0, {N})")
    return lm


def load_3ddfa_param_mean_std(path: PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """3DDFA(_V2) ``param_mean_std_62d_120x120.pkl`` -> mean (P,), std (P,) float32."""
    d = safe_load_pickle(path)
    if not isinstance(d, dict) or "mean" not in d or "std" not in d:
        raise ValueError(f"{str(path)!r}: expected a pickled dict with keys 'mean' and 'std'")
    m = np.asarray(d["mean"], np.float64).reshape(-1)
    s = np.asarray(d["std"], np.float64).reshape(-1)
    if m.shape != s.shape:
        raise ValueError(f"{str(path)!r}: 'mean' {m.shape} and 'std' {s.shape} differ in shape")
    return m.astype(np.float32), s.astype(np.float32)


def _whitening(P: int, param_mean_std, who: str) -> Tuple[np.ndarray, np.ndarray, str]:
    if param_mean_std is None:
        m = np.zeros(P, np.float32)
        s = np.ones(P, np.float32)
        return m, s, "identity (mean 0, std 1): no statistics given"
    if isinstance(param_mean_std, (str, os.PathLike)):
        m, s = load_3ddfa_param_mean_std(param_mean_std)
        src = f"3DDFA param_mean_std pkl {pathlib.Path(param_mean_std).name}"
    else:
        m, s = (np.asarray(x, np.float32).reshape(-1) for x in param_mean_std)
        src = "given arrays"
    if m.shape != (P,) or s.shape != (P,):
        raise ValueError(f"{who}: argument `param_mean_std` must give mean and std of shape "
                         f"({P},) = 12 + I + E, got {m.shape} and {s.shape}")
    return m, s, src


def load_3ddfa_bfm(path: PathLike, param_mean_std=None, n_id: int = 40, n_exp: int = 10,
                   tri=None, tri_base: Optional[int] = None,
                   name: Optional[str] = None) -> MorphableModel:
    """3DDFA's ``bfm_noneck_v3.pkl`` (or another 3DDFA BFM pickle) -> MorphableModel.

    Args:
        path: the pickle (restricted unpickler: numpy arrays and builtin containers only).
        param_mean_std: None (identity whitening), a path to 3DDFA's
            ``param_mean_std_62d_120x120.pkl``, or a (mean, std) pair of (12+I+E,) arrays.
        n_id, n_exp: number of identity / expression columns kept (3DDFA: 40, 10).
        tri: optional triangles overriding the pickle's ``tri``: a path to 3DDFA_V2's
            ``configs/tri.pkl`` or an array, (F, 3) or (3, F).
        tri_base: 0 or 1 when the triangle base cannot be detected (None = detect).
        name: model name (default: the file stem).

    Returns:
        MorphableModel in the file's units (micrometres for BFM), metadata with the source.
    """
    path = pathlib.Path(path)
    d = safe_load_pickle(path)
    if not isinstance(d, dict):
        raise ValueError(f"load_3ddfa_bfm: {str(path)!r} must hold a pickled dict, got "
                         f"{type(d).__name__}")
    need = ["u", "w_shp", "w_exp", "keypoints"] + ([] if tri is not None else ["tri"])
    missing = [k for k in need if k not in d]
    if missing:
        raise ValueError(f"load_3ddfa_bfm: {str(path)!r} lacks keys {missing} (has "
                         f"{sorted(map(str, d))})")
    u = _column("u", d["u"])
    n3 = u.shape[0]
    if n3 % 3:
        raise ValueError(f"load_3ddfa_bfm: key `u` must have 3N rows, got {n3}")
    N = n3 // 3
    if n_id < 0 or n_exp < 0:
        raise ValueError(f"load_3ddfa_bfm: arguments `n_id`, `n_exp` must be >= 0, got "
                         f"{n_id}, {n_exp}")
    w_shp = _basis("w_shp", d["w_shp"], n3, n_id)
    w_exp = _basis("w_exp", d["w_exp"], n3, n_exp)
    if tri is None:
        tri_src = "tri key"
        tri_arr = d["tri"]
    elif isinstance(tri, (str, os.PathLike)):
        tri_src = pathlib.Path(tri).name
        tri_arr = safe_load_pickle(tri)
    else:
        tri_src = "given array"
        tri_arr = tri
    triangles, base = _triangles("tri", tri_arr, N, tri_base)
    lm = keypoints_to_landmarks(d["keypoints"], N)
    P = NUM_POSE_PARAMS + n_id + n_exp
    pm, ps, wsrc = _whitening(P, param_mean_std, "load_3ddfa_bfm")
    used = {"u", "w_shp", "w_exp", "keypoints", "tri"}
    meta = {
        "source": f"3DDFA BFM pickle {path.name}", "format": "3ddfa-pkl",
        "unit": "um (BFM micrometres, as in the file)",
        "licence": "Basel Face Model: academic use only (user supplied)",
        "triangles": f"{tri_src}, {base}-based in the source",
        "n_id_available": int(np.shape(d["w_shp"])[1]),
        "n_exp_available": int(np.shape(d["w_exp"])[1]),
        "coefficients": "raw 3DDFA scale (w_shp/w_exp columns as stored)",
        "whitening": wsrc,
        "ignored_keys": sorted(str(k) for k in d if k not in used),
    }
    return MorphableModel(mean=u.astype(np.float32), id_basis=w_shp.astype(np.float32),
                          exp_basis=w_exp.astype(np.float32), triangles=triangles,
                          landmarks68=lm, param_mean=pm, param_std=ps,
                          name=name or path.stem, metadata=meta)


def _loadmat(path: PathLike, who: str) -> Dict[str, Any]:
    import scipy.io
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"{who}: {str(path)!r} is a MATLAB v7.3 (HDF5) file; re-save it as "
                         f"v7 (-v7) or earlier") from exc


def _trim_index(trim_index, N: int) -> np.ndarray:
    if isinstance(trim_index, (str, os.PathLike)):
        m = _loadmat(trim_index, "load_bfm2009")
        if "trimIndex" not in m:
            raise ValueError(f"load_bfm2009: {str(trim_index)!r} has no 'trimIndex' key")
        trim_index = m["trimIndex"]
    t = np.asarray(trim_index).reshape(-1)
    if t.dtype.kind not in "iuf" or (t.dtype.kind == "f" and not np.all(t == np.round(t))):
        raise ValueError("load_bfm2009: argument `trim_index` must hold integer vertex ids")
    t = t.astype(np.int64) - 1
    if t.size == 0 or t.min() < 0 or t.max() >= N:
        raise IndexError(f"load_bfm2009: argument `trim_index` (1-based) must lie in [1, {N}]")
    return t


def load_bfm2009(path: PathLike, expression: Optional[PathLike] = None,
                 landmarks68: Optional[Sequence[int]] = None, keypoints=None,
                 n_id: int = 40, n_exp: int = 10, trim_index=None,
                 scale_by_std: bool = True, param_mean_std=None,
                 name: Optional[str] = None) -> MorphableModel:
    """Basel BFM2009 ``01_MorphableModel.mat`` (+ optional expression .mat) -> MorphableModel.

    Args:
        path: ``01_MorphableModel.mat`` (keys shapeMU, shapePC, shapeEV, tl).
        expression: optional expression .mat (``w_exp`` [+ ``mu_exp``], or ``exp_pc``
            [+ ``exp_ev``] [+ ``exp_mu``]); without it E = 0 (``n_exp`` must be 0).
        landmarks68: (68,) 0-based vertex ids (after trimming), or use ``keypoints``.
        keypoints: (204,) 3DDFA interleaved row ids (alternative to ``landmarks68``).
        n_id, n_exp: components kept.
        trim_index: 1-based BFM2009 vertex ids to keep (array or .mat with ``trimIndex``);
            needed when the expression basis has fewer vertices than BFM2009.
        scale_by_std: True: id columns are ``shapePC * shapeEV`` (and ``exp_pc * exp_ev``)
            so coefficients ~ N(0, 1); False: raw principal components (3DDFA's scale).
            ``w_exp`` (3DDFA) is always used as stored.
        param_mean_std: None (identity) or a (mean, std) pair / 3DDFA pkl path.
        name: model name (default the file stem).

    Returns:
        MorphableModel in micrometres (BFM's unit).
    """
    path = pathlib.Path(path)
    m = _loadmat(path, "load_bfm2009")
    missing = [k for k in ("shapeMU", "shapePC", "shapeEV", "tl") if k not in m]
    if missing:
        raise ValueError(f"load_bfm2009: {str(path)!r} lacks keys {missing}")
    mu = _column("shapeMU", m["shapeMU"])
    n3 = mu.shape[0]
    if n3 % 3:
        raise ValueError(f"load_bfm2009: key `shapeMU` must have 3N rows, got {n3}")
    N0 = n3 // 3
    pc = _basis("shapePC", m["shapePC"], n3, n_id)
    ev = _column("shapeEV", m["shapeEV"])
    if ev.shape[0] < n_id:
        raise ValueError(f"load_bfm2009: key `shapeEV` has {ev.shape[0]} entries, fewer than "
                         f"n_id = {n_id}")
    if scale_by_std:
        pc = pc * ev[None, :n_id]
    tri, _ = _triangles("tl", m["tl"], N0, 1)
    keep = None
    if trim_index is not None:
        keep = _trim_index(trim_index, N0)
    meta: Dict[str, Any] = {
        "source": f"BFM2009 {path.name}", "format": "bfm2009-mat",
        "unit": "um (BFM micrometres)",
        "licence": "Basel Face Model: academic use only (user supplied)",
        "coefficients": ("N(0,1): columns scaled by shapeEV (standard deviations)"
                         if scale_by_std else "raw principal components"),
    }
    exp = np.zeros((n3, 0))
    exp_mu = None
    if expression is not None:
        em = _loadmat(expression, "load_bfm2009")
        if "w_exp" in em:
            eb, ekey = np.asarray(em["w_exp"]), "w_exp"
            emu = em.get("mu_exp")
            est = None
        elif "exp_pc" in em:
            eb, ekey = np.asarray(em["exp_pc"]), "exp_pc"
            emu = em.get("exp_mu")
            est = em.get("exp_ev")
        else:
            raise ValueError(f"load_bfm2009: expression file {str(expression)!r} has neither "
                             f"'w_exp' nor 'exp_pc'")
        en3 = eb.shape[0] if eb.ndim == 2 else -1
        if en3 != n3:
            if keep is None or en3 != 3 * keep.shape[0]:
                raise ValueError(
                    f"load_bfm2009: expression basis `{ekey}` has {en3} rows, the shape "
                    f"{n3}" + ("" if keep is None else f" ({3 * keep.shape[0]} after trim)")
                    + "; pass trim_index (face3d's trimIndex) to reduce BFM2009 to the "
                    "expression basis' vertices")
        eb = _basis(ekey, eb, en3, n_exp)
        if est is not None and scale_by_std:
            est = _column("exp_ev", est)
            if est.shape[0] < n_exp:
                raise ValueError(f"load_bfm2009: key `exp_ev` has {est.shape[0]} entries, "
                                 f"fewer than n_exp = {n_exp}")
            eb = eb * est[None, :n_exp]
        exp = eb
        if emu is not None:
            exp_mu = _column("mu_exp/exp_mu", emu, en3)
        meta["expression"] = f"{pathlib.Path(expression).name}: {ekey}" + (
            " + mean" if exp_mu is not None else "")
    elif n_exp != 0:
        raise ValueError(f"load_bfm2009: argument `n_exp` is {n_exp} but no `expression` file "
                         f"was given (BFM2009 has no expressions); pass n_exp=0")
    if keep is not None:
        rows = (3 * keep[:, None] + np.arange(3)[None]).reshape(-1)
        mu, pc = mu[rows], pc[rows]
        lut = np.full(N0, -1, np.int64)
        lut[keep] = np.arange(keep.shape[0])
        t2 = lut[tri]
        kept = np.all(t2 >= 0, axis=1)
        meta["trim"] = (f"{keep.shape[0]} of {N0} vertices kept; {int((~kept).sum())} of "
                        f"{tri.shape[0]} triangles dropped (they touch removed vertices)")
        tri = t2[kept].astype(np.int32)
        if exp.shape[0] != mu.shape[0]:
            exp = exp[rows] if exp.shape[1] else np.zeros((mu.shape[0], 0))
        if exp_mu is not None and exp_mu.shape[0] != mu.shape[0]:
            exp_mu = exp_mu[rows]
    if exp_mu is not None:
        mu = mu + exp_mu
    N = mu.shape[0] // 3
    if (landmarks68 is None) == (keypoints is None):
        raise ValueError("load_bfm2009: pass exactly one of `landmarks68` (68 vertex ids) or "
                         "`keypoints` (204 interleaved row ids); BFM2009 has no landmarks")
    lm = (keypoints_to_landmarks(keypoints, N) if keypoints is not None
          else np.asarray(landmarks68))
    P = NUM_POSE_PARAMS + n_id + n_exp
    pm, ps, wsrc = _whitening(P, param_mean_std, "load_bfm2009")
    meta["whitening"] = wsrc
    return MorphableModel(mean=mu.astype(np.float32), id_basis=pc.astype(np.float32),
                          exp_basis=exp.astype(np.float32), triangles=tri, landmarks68=lm,
                          param_mean=pm, param_std=ps, name=name or path.stem, metadata=meta)
