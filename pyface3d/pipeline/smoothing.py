"""One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) for landmarks and pose.

A first-order low-pass filter whose cutoff rises with the signal's speed: still faces are
smoothed strongly (little jitter), fast motion passes with little lag. Vectorised: one filter
holds any array shape and filters every element independently.

    alpha(fc) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_hat = lowpass(dx, alpha(d_cutoff));  fc = min_cutoff + beta * |dx_hat|
    x_hat  = lowpass(x, alpha(fc))
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

__all__ = ["OneEuroFilter"]


def _alpha(cutoff, dt):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Args:
        min_cutoff: cutoff (Hz) at rest; lower = smoother, more lag when slow.
        beta: speed coefficient; higher = less lag when fast.
        d_cutoff: cutoff (Hz) of the derivative estimate.

    ``filter(x, t)`` takes an array and its timestamp in seconds (strictly increasing);
    the first call returns ``x`` unchanged. ``reset()`` forgets the state (e.g. after a
    re-detection that moved the face)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0):
        for n, v in (("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"argument `{n}` must be a positive number, got {v}")
        if not (beta >= 0 and math.isfinite(beta)):
            raise ValueError(f"argument `beta` must be >= 0, got {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: Optional[np.ndarray] = None
        self._dx: Optional[np.ndarray] = None
        self._t: Optional[float] = None

    def filter(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if not dt > 0:
            raise ValueError(f"OneEuroFilter.filter: timestamps must increase (got {t} after "
                             f"{self._t})")
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        tau = 1.0 / (2.0 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._x = a * x + (1 - a) * self._x
        self._t = float(t)
        return self._x.copy()

    __call__ = filter
