"""Normalised mean error (NME) of landmarks, yaw buckets and the AFLW / AFLW2000-3D protocols.

Inputs may be torch tensors or numpy arrays (anything ``torch.as_tensor`` accepts); results
are numpy arrays / Python floats. Computation is in float64.
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch

__all__ = ["nme", "normalizer", "bucket_by_yaw", "format_yaw_table", "AFLW21_FROM_68",
           "aflw21_from_68", "aflw21_visibility", "aflw_dev_nme", "aflw2000_nme", "NORMS"]

NORMS = ("box", "diag", "ipd", "iod")

#: AFLW's 21 points as 1-based groups of the 68-point iBUG layout (3DDFA's AFLW benchmark):
#: each AFLW point is the mean of its group.
AFLW21_FROM_68 = ((18,), (20,), (22,), (23,), (25,), (27,), (37,), tuple(range(37, 43)),
                  (40,), (43,), tuple(range(43, 49)), (46,), (3,), (32,), (31,), (36,), (15,),
                  (49,), tuple(range(61, 69)), (55,), (9,))


def _f64(x, name: str, who: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(x)
    except Exception as exc:  # pragma: no cover - message path
        raise TypeError(f"{who}: argument `{name}` must be array-like, got {type(x).__name__}") \
            from exc
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in
                                     (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise TypeError(f"{who}: argument `{name}` must be real-valued, got {t.dtype}")
    return t.detach().to("cpu", torch.float64)


def _points(x, name: str, who: str, k: Optional[int] = None) -> torch.Tensor:
    t = _f64(x, name, who)
    if t.dim() != 3 or t.shape[2] != 2 or (k is not None and t.shape[1] != k):
        want = f"(B, {k}, 2)" if k is not None else "(B, K, 2)"
        raise ValueError(f"{who}: argument `{name}` must have shape {want}, got "
                         f"{tuple(t.shape)}")
    return t


def _visibility(vis, shape, who: str) -> torch.Tensor:
    if vis is None:
        return torch.ones(shape, dtype=torch.bool)
    v = torch.as_tensor(vis).detach().cpu()
    if tuple(v.shape) != tuple(shape):
        raise ValueError(f"{who}: argument `visibility` must have shape {tuple(shape)}, got "
                         f"{tuple(v.shape)}")
    return v > 0 if v.dtype != torch.bool else v


def normalizer(gt, norm: str = "box", visibility=None) -> np.ndarray:
    """Per-sample normalising length of ``gt (B, K, 2)``.

    * ``"box"``: ``sqrt(w * h)`` of the bounding box of the visible ground-truth points
      (3DDFA / thesis eq. 6.9);
    * ``"diag"``: ``sqrt(w^2 + h^2)`` of that box;
    * ``"ipd"``: inter-pupil distance, between the eye centres (means of the 68-point
      layout's points 37-42 and 43-48, 1-based); needs K = 68;
    * ``"iod"``: inter-ocular distance, between the outer eye corners 37 and 46 (1-based;
      0-based 36 and 45); needs K = 68.

    Raises ValueError for an unknown ``norm``, a sample without visible points, or a
    normaliser that is zero / not finite.
    """
    who = "normalizer"
    if norm not in NORMS:
        raise ValueError(f"{who}: argument `norm` must be one of {NORMS}, got {norm!r}")
    g = _points(gt, "gt", who, 68 if norm in ("ipd", "iod") else None)
    vis = _visibility(visibility, g.shape[:2], who)
    return _normalizer(g, norm, vis, who).numpy()


def _normalizer(g: torch.Tensor, norm: str, vis: torch.Tensor, who: str) -> torch.Tensor:
    if norm in ("box", "diag"):
        if g.shape[0] and not bool(vis.any(dim=1).all()):
            bad = int((~vis.any(dim=1)).nonzero()[0])
            raise ValueError(f"{who}: sample {bad} has no visible point (argument `visibility`)")
        inf = torch.tensor(math.inf, dtype=g.dtype)
        lo = torch.where(vis[..., None], g, inf).amin(dim=1)
        hi = torch.where(vis[..., None], g, -inf).amax(dim=1)
        wh = hi - lo
        d = (wh[:, 0] * wh[:, 1]).sqrt() if norm == "box" else wh.norm(dim=1)
    elif norm == "ipd":
        d = (g[:, 36:42].mean(1) - g[:, 42:48].mean(1)).norm(dim=1)
    else:
        d = (g[:, 36] - g[:, 45]).norm(dim=1)
    bad = ~(torch.isfinite(d) & (d > 0))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"{who}: the '{norm}' normaliser of sample {i} is {float(d[i])} "
                         "(argument `gt`: degenerate ground truth)")
    return d


def nme(pred, gt, norm: str = "box", visibility=None) -> np.ndarray:
    """Per-sample normalised mean error.

    ``NME_b = mean_{k visible} ||pred_bk - gt_bk|| / d_b`` with ``d_b`` from
    :func:`normalizer` (``norm`` in ``"box"`` (default, ``sqrt(w*h)`` of the visible gt
    box), ``"diag"``, ``"ipd"``, ``"iod"``).

    Args:
        pred: (B, K, 2) predicted points.
        gt: (B, K, 2) ground-truth points.
        norm: normaliser name.
        visibility: optional (B, K), bool or real (visible where > 0); invisible points are
            excluded from the mean and from the box. ``None``: all visible.

    Returns:
        (B,) float64 numpy array (a fraction; multiply by 100 for %).

    Raises:
        ValueError: shapes, unknown ``norm``, a sample with no visible point, a zero
            normaliser.
    """
    who = "nme"
    if norm not in NORMS:
        raise ValueError(f"{who}: argument `norm` must be one of {NORMS}, got {norm!r}")
    g = _points(gt, "gt", who, 68 if norm in ("ipd", "iod") else None)
    p = _points(pred, "pred", who)
    if p.shape != g.shape:
        raise ValueError(f"{who}: `pred` {tuple(p.shape)} and `gt` {tuple(g.shape)} differ "
                         "in shape")
    vis = _visibility(visibility, g.shape[:2], who)
    d = _normalizer(g, norm, vis, who)
    err = (p - g).norm(dim=2)
    # invisible entries may hold NaN / placeholders: mask with where, not by multiplication
    err = torch.where(vis, err, torch.zeros_like(err))
    return (err.sum(1) / vis.sum(1).clamp_min(1) / d).numpy()


def bucket_by_yaw(errors, yaw, edges: Sequence[float] = (30.0, 60.0)) -> Dict[str, object]:
    """Mean error per |yaw| bucket (3DDFA protocol).

    Buckets for ``edges = (30, 60)``: ``|yaw| <= 30``, ``30 < |yaw| <= 60``, ``|yaw| > 60``
    (degrees). ``mean`` is the mean of the bucket means and ``std`` their sample standard
    deviation (ddof = 1, as in thesis table 6.1: e.g. 4.359 / 5.209 / 6.028 -> 5.199,
    0.835). An empty bucket has mean NaN (its count, 0, is reported), which makes
    ``mean``/``std`` NaN too.

    Args:
        errors: (B,) per-sample errors (e.g. from :func:`nme`).
        yaw: (B,) yaw angles in degrees (the sign is ignored).
        edges: increasing bucket edges in degrees.

    Returns:
        dict with ``buckets`` (list of means), ``counts`` (list of int), ``labels``
        (e.g. ``"[0, 30]"``), ``mean``, ``std``, ``overall`` (plain mean over samples).
    """
    who = "bucket_by_yaw"
    e = _f64(errors, "errors", who)
    y = _f64(yaw, "yaw", who)
    if e.dim() != 1 or y.shape != e.shape:
        raise ValueError(f"{who}: arguments `errors` and `yaw` must both have shape (B,), got "
                         f"{tuple(e.shape)} and {tuple(y.shape)}")
    edges = [float(x) for x in edges]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] <= 0:
        raise ValueError(f"{who}: argument `edges` must be positive and increasing, got {edges}")
    if bool(torch.isnan(y).any()):
        raise ValueError(f"{who}: argument `yaw` contains NaN")
    a = y.abs()
    lows = [0.0] + edges
    highs = edges + [math.inf]
    means, counts, labels = [], [], []
    for i, (lo, hi) in enumerate(zip(lows, highs)):
        sel = (a <= hi) if i == 0 else ((a > lo) & (a <= hi))
        n = int(sel.sum())
        counts.append(n)
        means.append(float(e[sel].mean()) if n else math.nan)
        labels.append(f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f"[{lo:g}, 90]")
    m = np.asarray(means)
    return {"buckets": means, "counts": counts, "labels": labels, "mean": float(m.mean()),
            "std": float(m.std(ddof=1)) if len(m) > 1 else 0.0,
            "overall": float(e.mean()) if e.numel() else math.nan}


def format_yaw_table(rows: Mapping[str, object], datasets: Optional[Sequence[str]] = None,
                     percent: bool = True, digits: int = 3, style: str = "markdown") -> str:
    """Format yaw-bucket results in the layout of thesis table 6.1.

    Rows are methods; for each dataset the columns are the bucket means, ``Mean`` and
    ``Std``. ``rows[method]`` is either one :func:`bucket_by_yaw` result (single dataset) or
    a mapping ``dataset -> result`` (several, e.g. ``{"AFLW (21 pts)": ...,
    "AFLW2000-3D (68 pts)": ...}``); a result may also be a sequence of 5 numbers
    (three buckets, mean, std) or None / missing (printed as ``-``). Values are multiplied
    by 100 when ``percent`` (NME in %).

    Args:
        rows: method name -> result(s).
        datasets: dataset column groups in order (default: the keys of the first mapping
            row in order of first appearance, or a single unnamed group).
        percent, digits: scaling and decimals.
        style: ``"markdown"`` (pipe table) or ``"text"`` (aligned plain text).

    Returns:
        the table as a string (no trailing newline).
    """
    who = "format_yaw_table"
    if style not in ("markdown", "text"):
        raise ValueError(f"{who}: argument `style` must be 'markdown' or 'text', got {style!r}")

    def is_result(v):
        return v is None or (isinstance(v, Mapping) and "buckets" in v) or \
            (isinstance(v, (list, tuple, np.ndarray)) and len(v) == 5)

    single = all(is_result(v) for v in rows.values())
    if datasets is None:
        if single:
            datasets = [""]
        else:
            datasets = []
            for v in rows.values():
                if isinstance(v, Mapping) and not is_result(v):
                    for k in v:
                        if k not in datasets:
                            datasets.append(k)
    labels = ["[0, 30]", "[30, 60]", "[60, 90]"]
    for v in rows.values():
        cand = v if is_result(v) else (next((x for x in v.values() if isinstance(x, Mapping)
                                             and "labels" in x), None)
                                       if isinstance(v, Mapping) else None)
        if isinstance(cand, Mapping) and "labels" in cand:
            labels = list(cand["labels"])
            break

    def cells(res):
        if res is None:
            return ["-"] * (len(labels) + 2)
        if isinstance(res, Mapping):
            vals = list(res["buckets"]) + [res["mean"], res["std"]]
        else:
            vals = list(res)
        if len(vals) != len(labels) + 2:
            raise ValueError(f"{who}: a result has {len(vals)} values, expected "
                             f"{len(labels) + 2}")
        scale = 100.0 if percent else 1.0
        return ["-" if v is None or (isinstance(v, float) and math.isnan(v))
                else f"{float(v) * scale:.{digits}f}" for v in vals]

    header = ["Method"]
    group = [""]
    for ds in datasets:
        cols = labels + ["Mean", "Std"]
        header += cols
        group += [ds] + [""] * (len(cols) - 1)
    body = []
    for name, v in rows.items():
        line = [str(name)]
        for ds in datasets:
            res = v if single else (v.get(ds) if isinstance(v, Mapping) else None)
            line += cells(res)
        body.append(line)
    table = ([group] if any(group) else []) + [header] + body
    if style == "markdown":
        out = ["| " + " | ".join(r) + " |" for r in table]
        out.insert(len(table) - len(body), "|" + "|".join(["---"] * len(header)) + "|")
        return "\n".join(out)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in table)


def aflw21_from_68(pts68) -> np.ndarray:
    """Map 68 iBUG points (B, 68, 2) to AFLW's 21 (B, 21, 2): each the mean of its group
    in :data:`AFLW21_FROM_68` (1-based 68-point indices)."""
    p = _points(pts68, "pts68", "aflw21_from_68", 68)
    return torch.stack([p[:, [i - 1 for i in grp]].mean(1) for grp in AFLW21_FROM_68],
                       dim=1).numpy()


def _pts21(pts21, who: str) -> torch.Tensor:
    t = _f64(pts21, "pts21", who)
    if t.dim() == 3 and t.shape[1:] == (2, 21):
        t = t.transpose(1, 2)
    if t.dim() != 3 or t.shape[1:] != (21, 2):
        raise ValueError(f"{who}: argument `pts21` must have shape (B, 21, 2) or (B, 2, 21), "
                         f"got {tuple(t.shape)}")
    return t


def aflw21_visibility(pts21) -> np.ndarray:
    """(B, 21) bool: a point is invisible when a coordinate is exactly -1 (3DDFA's AFLW
    protocol; in ``aflw-dev/labels.npz`` x is -1 and y a placeholder). ``pts21`` (B, 21, 2)
    or (B, 2, 21) as stored in ``labels.npz``."""
    t = _pts21(pts21, "aflw21_visibility")
    return (t != -1).all(dim=2).numpy()


def aflw_dev_nme(pred68, pts21) -> np.ndarray:
    """Per-sample NME on the aflw-dev protocol (../shared/README.md "How aflw-dev is scored").

    The 68-point prediction (original-image coordinates, i.e. already mapped back through
    ``roi_box``) is reduced to AFLW's 21 points (:func:`aflw21_from_68`); the error is the
    mean distance over the visible points (:func:`aflw21_visibility`) divided by
    ``sqrt(w*h)`` of the box of the visible ``pts21``.

    Args:
        pred68: (B, 68, 2) predictions in image coordinates.
        pts21: (B, 21, 2) or (B, 2, 21) ground truth, -1 where invisible.

    Returns:
        (B,) float64 (fractions). Bucket with :func:`bucket_by_yaw` for table 6.1.
    """
    gt = torch.as_tensor(_pts21(pts21, "aflw_dev_nme"))
    vis = torch.as_tensor(aflw21_visibility(gt))
    pred = aflw21_from_68(pred68)
    if pred.shape[0] != gt.shape[0]:
        raise ValueError(f"aflw_dev_nme: `pred68` has {pred.shape[0]} samples, `pts21` "
                         f"{gt.shape[0]}")
    return nme(pred, gt, "box", vis)


def aflw2000_nme(pred68, gt68) -> np.ndarray:
    """Per-sample NME on AFLW2000-3D (DESIGN.md): mean 2D error over the 68 points divided by
    ``sqrt(w*h)`` of the ground-truth landmark box (all points; x, y only).

    Args:
        pred68: (B, 68, 2) predictions, image coordinates.
        gt68: (B, 68, 2) ground truth (AFLW2000-3D ``pt3d_68`` x, y), or (B, 2, 68) /
            (B, 3, 68) as stored in the .mat files (the first two rows are used).
    """
    g = _f64(gt68, "gt68", "aflw2000_nme")
    if g.dim() == 3 and g.shape[1] in (2, 3) and g.shape[2] == 68:
        g = g[:, :2].transpose(1, 2)
    return nme(pred68, g, "box", None)
