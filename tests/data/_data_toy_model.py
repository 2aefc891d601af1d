"""A small 68-point morphable model symmetric under the iBUG flip (test helper)."""
import numpy as np

from pyface3d.data import KeypointBases


def _toy_bases(n_id=40, n_exp=10, zero_from=(3, 2)):
    """A 68-point model symmetric under the iBUG flip (x about 0): symmetric and antisymmetric
    deformation columns, so that parameter flips are exact. Columns from ``zero_from`` on are 0
    (like a model with fewer coefficients padded to 40 + 10)."""
    from pyface3d.data import IBUG68_FLIP
    rng = np.random.default_rng(0)

    def sym(v, sign):
        v = v.copy()
        for i, j in enumerate(IBUG68_FLIP):
            if j > i:
                v[j] = sign * v[i] * [-1, 1, 1]
            elif j == i:
                v[i] = v[i] * ([0, 1, 1] if sign > 0 else [1, 0, 0])
        return v.ravel()

    mean = sym(rng.normal(size=(68, 3)) * [40, 50, 20], 1)
    ib = np.stack([sym(rng.normal(size=(68, 3)), 1 if j % 2 else -1) for j in range(n_id)], 1)
    eb = np.stack([sym(rng.normal(size=(68, 3)), 1 if j % 2 else -1) for j in range(n_exp)], 1)
    ib[:, zero_from[0]:] = 0
    eb[:, zero_from[1]:] = 0
    return KeypointBases(mean, ib, eb)
