import numpy as np
import pytest

from pyface3d.pipeline import OneEuroFilter


def test_first_value_passes_and_constant_stays():
    f = OneEuroFilter()
    x = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(f(x, 0.0), x)
    for i in range(1, 10):
        np.testing.assert_allclose(f(x, i / 30), x)


def test_reduces_jitter_and_follows_a_step():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    noisy = 5 + rng.normal(0, 1, (300, 10))
    out = np.array([f(v, i / 30) for i, v in enumerate(noisy)])
    assert out[50:].std() < 0.35 * noisy[50:].std()
    # a step: the output converges to the new value
    g = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    for i in range(200):
        y = g(np.array([0.0 if i < 10 else 100.0]), i / 30)
    assert abs(y[0] - 100) < 1e-3


def test_beta_reduces_lag_on_fast_motion():
    def lag(beta):
        f = OneEuroFilter(min_cutoff=0.5, beta=beta)
        errs = []
        for i in range(100):
            x = np.array([10.0 * i])  # 300 px/s
            errs.append(abs(f(x, i / 30)[0] - x[0]))
        return np.mean(errs[50:])
    assert lag(1.0) < 0.2 * lag(0.0)


def test_errors():
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
    with pytest.raises(ValueError, match="beta"):
        OneEuroFilter(beta=-1)
    f = OneEuroFilter()
    f(np.zeros(2), 1.0)
    with pytest.raises(ValueError, match="increase"):
        f(np.zeros(2), 1.0)
    f.reset()
    f(np.zeros(2), 0.5)  # after reset any timestamp starts again
