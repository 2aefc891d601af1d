"""Cumulative error distribution (CED), AUC, accuracy / failure rate and a CED plot."""
from __future__ import annotations

import math
import os
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["ced_curve", "auc", "accuracy", "failure_rate", "plot_ced", "AUC_THRESHOLDS"]

#: thresholds used by the thesis for AUC_eps (chapter 3/4): 7 %, 8 %, 10 %
AUC_THRESHOLDS = (0.07, 0.08, 0.10)


def _errors(errors, who: str) -> np.ndarray:
    e = np.asarray(errors.detach().cpu() if hasattr(errors, "detach") else errors,
                   dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"{who}: argument `errors` must be 1-D (one error per image), got "
                         f"shape {e.shape}")
    if np.isnan(e).any():
        raise ValueError(f"{who}: argument `errors` contains NaN")
    if (e < 0).any():
        raise ValueError(f"{who}: argument `errors` must be >= 0")
    return e


def _threshold(t: float, who: str, name: str = "threshold") -> float:
    t = float(t)
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"{who}: argument `{name}` must be finite > 0, got {t}")
    return t


def ced_curve(errors, max_error: Optional[float] = None,
              num: int = 1001) -> Tuple[np.ndarray, np.ndarray]:
    """CED: ``f(x) = #{e_i <= x} / n`` on ``x = linspace(0, max_error, num)``.

    ``max_error`` defaults to the largest error (at least 1e-12). Returns ``(x, f)``.
    """
    who = "ced_curve"
    e = _errors(errors, who)
    if num < 2:
        raise ValueError(f"{who}: argument `num` must be >= 2, got {num}")
    if max_error is None:
        max_error = max(float(e.max()) if e.size else 0.0, 1e-12)
    x = np.linspace(0.0, _threshold(max_error, who, "max_error"), int(num))
    if e.size == 0:
        return x, np.full_like(x, np.nan)
    s = np.sort(e)
    return x, np.searchsorted(s, x, side="right") / e.size


def auc(errors, threshold: float = 0.07) -> float:
    """``AUC_eps = (1 / eps) * integral_0^eps CED(e) de`` in [0, 1] (thesis eq. 3.3,
    normalised by eps). Exact for the step-function CED:
    ``mean_i max(0, eps - e_i) / eps``; errors above eps do not count."""
    who = "auc"
    e = _errors(errors, who)
    eps = _threshold(threshold, who)
    if e.size == 0:
        return math.nan
    return float(np.maximum(0.0, eps - e).mean() / eps)


def accuracy(errors, threshold: float = 0.07) -> float:
    """ACC: share of images with NME < ``threshold`` (thesis chapter 3: 0.07)."""
    e = _errors(errors, "accuracy")
    t = _threshold(threshold, "accuracy")
    return float((e < t).mean()) if e.size else math.nan


def failure_rate(errors, threshold: float = 0.07) -> float:
    """Share of images with NME >= ``threshold`` (``1 - accuracy``)."""
    e = _errors(errors, "failure_rate")
    t = _threshold(threshold, "failure_rate")
    return float((e >= t).mean()) if e.size else math.nan


def plot_ced(curves: Mapping[str, object], path, max_error: float = 0.1, num: int = 1001,
             title: Optional[str] = None, percent: bool = True,
             thresholds: Sequence[float] = ()) -> str:
    """Write a CED plot (PNG, matplotlib's Agg canvas; the global backend is not changed).

    Args:
        curves: method name -> (n,) per-image errors; the legend shows AUC at ``max_error``.
        path: output file (``.png``); its folder must exist.
        max_error: right end of the x axis (also the AUC threshold in the legend).
        num: points per curve.
        title: optional title.
        percent: label the x axis in % (values x 100).
        thresholds: optional vertical lines (e.g. 0.07).

    Returns:
        ``str(path)``.
    """
    who = "plot_ced"
    if not curves:
        raise ValueError(f"{who}: argument `curves` must not be empty")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{who}: the folder of argument `path` does not exist: {folder}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    scale = 100.0 if percent else 1.0
    for name, errs in curves.items():
        x, f = ced_curve(errs, max_error, num)
        ax.plot(x * scale, f, label=f"{name} (AUC@{max_error * scale:g}"
                f"{'%' if percent else ''} = {auc(errs, max_error):.3f})")
    for t in thresholds:
        ax.axvline(float(t) * scale, color="grey", linestyle=":", linewidth=1)
    ax.set_xlim(0, max_error * scale)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (%)" if percent else "NME")
    ax.set_ylabel("fraction of images")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
