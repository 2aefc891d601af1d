"""Tests of the Wing family: wing_loss, adaptive_wing_loss, adaptive_wing_weight_map."""
import math

import pytest
import torch

from pyface3d.ops import _lib, wing
from pyface3d.ops import _reference_wing as ref

needs_c = pytest.mark.skipif(not _lib.HAS_C, reason="pyface3d._C is not built")
REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)


def _wing_inputs(shape, dtype, device, scale=8.0):
    pred = (torch.randn(shape, dtype=torch.float64) * scale).to(dtype).to(device)
    target = (torch.randn(shape, dtype=torch.float64) * scale).to(dtype).to(device)
    return pred, target


def _heatmaps(shape, dtype, device):
    """Gaussian-like targets in [0, 1] with some foreground, noisy predictions."""
    B, K, H, W = shape
    ys = torch.arange(H, dtype=torch.float64).view(1, 1, H, 1)
    xs = torch.arange(W, dtype=torch.float64).view(1, 1, 1, W)
    cy = torch.rand(B, K, 1, 1, dtype=torch.float64) * H
    cx = torch.rand(B, K, 1, 1, dtype=torch.float64) * W
    target = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * 1.5 ** 2))
    pred = target + 0.4 * torch.randn(B, K, H, W, dtype=torch.float64)
    return pred.to(dtype).to(device), target.to(dtype).to(device)


# --------------------------------------------------------------------------- Wing
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_wing_vs_reference(device, dtype, reduction):
    pred, target = _wing_inputs((3, 50, 3), dtype, device)
    assert ((pred - target).abs() >= 10).any() and ((pred - target).abs() < 10).any()
    out = wing.wing_loss(pred, target, 10.0, 2.1, reduction)
    exp = ref.wing_loss(pred, target, 10.0, 2.1, reduction)
    assert out.shape == exp.shape and out.dtype == dtype and out.device == pred.device
    torch.testing.assert_close(out, exp, **_tol(dtype))


@pytest.mark.parametrize("D", [1, 2, 3, 5])
def test_wing_any_last_dim(D):
    pred, target = _wing_inputs((2, 7, D), torch.float64, "cpu")
    torch.testing.assert_close(wing.wing_loss(pred, target, reduction="none"),
                               ref.wing_loss(pred, target, reduction="none"))


def test_wing_large_float32_vs_reference():
    # exercises the vectorised float path over several chunks and threads
    pred, target = _wing_inputs((4, 20000, 3), torch.float32, "cpu", scale=6.0)
    for red in REDUCTIONS:
        torch.testing.assert_close(wing.wing_loss(pred, target, reduction=red),
                                   ref.wing_loss(pred, target, reduction=red),
                                   rtol=2e-6, atol=2e-6)
    # tiny residuals: log1p stays accurate
    tiny = torch.tensor([0.0, 1e-30, 1e-12, 1e-7, 3e-5, 1e-3], dtype=torch.float32)
    p = tiny.view(1, -1, 1)
    out = wing.wing_loss(p, torch.zeros_like(p), reduction="none")
    exp = 10.0 * torch.log1p(tiny.double() / 2.0)
    torch.testing.assert_close(out.double().flatten(), exp, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wing_known_values(device, dtype):
    omega, eps = 10.0, 2.0
    C = omega - omega * math.log(1 + omega / eps)
    d = torch.tensor([0.0, 1.0, -1.0, 4.0, 15.0, -25.0], dtype=dtype)
    exp = torch.tensor([0.0, 10 * math.log(1.5), 10 * math.log(1.5), 10 * math.log(3.0),
                        15.0 - C, 25.0 - C], dtype=torch.float64)
    pred = d.view(1, 3, 2).to(device)
    target = torch.zeros_like(pred)
    out = wing.wing_loss(pred + 3.0, target + 3.0, omega, eps, "none")
    torch.testing.assert_close(out.double().cpu().flatten(), exp, **_tol(dtype))
    torch.testing.assert_close(wing.wing_loss(pred, target, omega, eps, "sum").double().cpu(),
                               exp.sum(), **_tol(dtype))
    torch.testing.assert_close(wing.wing_loss(pred, target, omega, eps).double().cpu(),
                               exp.mean(), **_tol(dtype))


def test_wing_continuity_at_omega():
    omega, eps = 10.0, 2.1
    x = torch.tensor([omega - 1e-9, omega, omega + 1e-9], dtype=torch.float64).view(1, 3, 1)
    out = wing.wing_loss(x, torch.zeros_like(x), omega, eps, "none").flatten()
    assert abs(out[0] - out[1]) < 1e-8 and abs(out[2] - out[1]) < 1e-8
    # gradient: omega / (eps + x) below, 1 above
    g = wing.wing_loss  # noqa
    p = x.clone().requires_grad_()
    wing.wing_loss(p, torch.zeros_like(x), omega, eps, "sum").backward()
    torch.testing.assert_close(p.grad.flatten(), torch.tensor(
        [omega / (eps + omega - 1e-9), 1.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_wing_grad_vs_reference(device, dtype, reduction):
    pred, target = _wing_inputs((2, 30, 3), dtype, device)
    p1 = pred.clone().requires_grad_()
    t1 = target.clone().requires_grad_()
    p2 = pred.clone().requires_grad_()
    t2 = target.clone().requires_grad_()
    o1 = wing.wing_loss(p1, t1, 10.0, 2.0, reduction)
    o2 = ref.wing_loss(p2, t2, 10.0, 2.0, reduction)
    g = torch.randn_like(o1)
    o1.backward(g)
    o2.backward(g)
    torch.testing.assert_close(p1.grad, p2.grad, **_tol(dtype))
    torch.testing.assert_close(t1.grad, t2.grad, **_tol(dtype))


def test_wing_grad_only_target():
    pred, target = _wing_inputs((2, 5, 3), torch.float64, "cpu")
    t = target.clone().requires_grad_()
    wing.wing_loss(pred, t).backward()
    t2 = target.clone().requires_grad_()
    ref.wing_loss(pred, t2).backward()
    torch.testing.assert_close(t.grad, t2.grad)


def test_fallback_to_reference(monkeypatch):
    monkeypatch.setattr(_lib, "HAS_C", False)
    monkeypatch.setattr(_lib, "_warned", False)
    pred, target = _wing_inputs((2, 5, 3), torch.float64, "cpu")
    with pytest.warns(RuntimeWarning, match="reference"):
        out = wing.wing_loss(pred, target)
    torch.testing.assert_close(out, ref.wing_loss(pred, target))
    hp, ht = _heatmaps((1, 2, 5, 5), torch.float64, "cpu")
    torch.testing.assert_close(wing.adaptive_wing_loss(hp, ht), ref.adaptive_wing_loss(hp, ht))


def test_wing_grad_at_zero_residual():
    p = torch.zeros(1, 2, 2, dtype=torch.float64, requires_grad=True)
    wing.wing_loss(p, torch.zeros(1, 2, 2, dtype=torch.float64)).backward()
    assert torch.equal(p.grad, torch.zeros_like(p))


def _away_from_kinks(x, kinks, gap=1e-3):
    for k in kinks:
        close = (x.abs() - k).abs() < gap
        x = torch.where(close, x + 5 * gap * torch.sign(x + 0.5 * gap), x)
    return x


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_wing_gradcheck(reduction):
    pred, target = _wing_inputs((2, 6, 3), torch.float64, "cpu")
    d = _away_from_kinks(pred - target, [0.0, 10.0])
    pred = (target + d).requires_grad_()
    target = target.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p, t: wing.wing_loss(p, t, 10.0, 2.1, reduction), (pred, target))


def test_wing_module():
    m = wing.WingLoss(omega=10.0, epsilon=2.1, reduction="sum")
    pred, target = _wing_inputs((2, 5, 2), torch.float64, "cpu")
    torch.testing.assert_close(m(pred, target), ref.wing_loss(pred, target, 10.0, 2.1, "sum"))
    assert "omega=10.0" in repr(m)


def test_wing_deterministic_across_threads():
    pred, target = _wing_inputs((3, 40000, 3), torch.float32, "cpu")
    old = torch.get_num_threads()
    try:
        outs = []
        for nt in (1, 2, 1):
            torch.set_num_threads(nt)
            outs.append(wing.wing_loss(pred, target))
            outs.append(wing.wing_loss(pred, target, reduction="sum"))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[2]) and torch.equal(outs[0], outs[4])
    assert torch.equal(outs[1], outs[3]) and torch.equal(outs[1], outs[5])


# ----------------------------------------------------------------- Adaptive Wing
AW_CONFIGS = [
    dict(),  # paper defaults
    dict(weight=0.0),
    dict(dilation=1),
    dict(dilation=5, weight=3.0, threshold=0.5),
    dict(alpha=2.5, omega=10.0, epsilon=0.5, theta=0.3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("cfg", AW_CONFIGS)
def test_awing_vs_reference(device, dtype, reduction, cfg):
    pred, target = _heatmaps((2, 3, 9, 11), dtype, device)
    out = wing.adaptive_wing_loss(pred, target, reduction=reduction, **cfg)
    exp = ref.adaptive_wing_loss(pred, target, reduction=reduction, **cfg)
    assert out.shape == exp.shape and out.dtype == dtype
    torch.testing.assert_close(out, exp, **_tol(dtype))


def _awing_scalar(p, y, alpha=2.1, omega=14.0, eps=1.0, theta=0.5):
    d = abs(y - p)
    e = alpha - y
    if d < theta:
        return omega * math.log(1 + (d / eps) ** e)
    A = omega * (1 / (1 + (theta / eps) ** e)) * e * (theta / eps) ** (e - 1) / eps
    C = theta * A - omega * math.log(1 + (theta / eps) ** e)
    return A * d - C


@pytest.mark.parametrize("dtype", DTYPES)
def test_awing_known_values(device, dtype):
    pairs = [(0.0, 0.0), (0.1, 0.0), (0.3, 1.0), (0.45, 0.9), (1.5, 0.2), (-0.8, 0.7),
             (2.0, 0.0), (0.9, 0.95)]
    pred = torch.tensor([p for p, _ in pairs], dtype=dtype).view(1, 1, 2, 4).to(device)
    target = torch.tensor([y for _, y in pairs], dtype=dtype).view(1, 1, 2, 4).to(device)
    exp = torch.tensor([_awing_scalar(p, y) for p, y in pairs], dtype=torch.float64)
    out = wing.adaptive_wing_loss(pred, target, weight=0.0, reduction="none")
    torch.testing.assert_close(out.double().cpu().flatten(), exp, **_tol(dtype))


def test_awing_continuity_at_theta():
    theta = 0.5
    for y in (0.0, 0.3, 1.0):
        p = torch.tensor([y + theta - 1e-10, y + theta, y + theta + 1e-10],
                         dtype=torch.float64).view(1, 1, 1, 3)
        t = torch.full_like(p, y)
        out = wing.adaptive_wing_loss(p, t, theta=theta, weight=0.0, reduction="none").flatten()
        assert abs(out[0] - out[1]) < 1e-8 and abs(out[2] - out[1]) < 1e-8
        # slope is continuous too (A is the derivative of the log branch at theta)
        pp = p.clone().requires_grad_()
        wing.adaptive_wing_loss(pp, t, theta=theta, weight=0.0, reduction="sum").backward()
        g = pp.grad.flatten()
        assert abs(g[0] - g[2]) < 1e-6 * abs(g[2])


def test_weight_map_hand_made():
    t = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    t[0, 0, 0, 0] = 0.9   # corner: dilation clipped at the border
    t[0, 0, 2, 4] = 0.21  # interior, just above the threshold
    t[0, 0, 4, 1] = 0.2   # equal to the threshold: not foreground
    t[0, 1, 4, 5] = 1.0   # other map, opposite corner
    m = wing.adaptive_wing_weight_map(t, weight=10.0, threshold=0.2, dilation=3)
    D = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    D[0, 0, 0:2, 0:2] = 1
    D[0, 0, 1:4, 3:6] = 1
    D[0, 1, 3:5, 4:6] = 1
    torch.testing.assert_close(m, 1 + 10 * D)
    m1 = wing.adaptive_wing_weight_map(t, weight=2.0, threshold=0.2, dilation=1)
    torch.testing.assert_close(m1, 1 + 2 * (t > 0.2).double())
    m5 = wing.adaptive_wing_weight_map(t, weight=1.0, threshold=0.5, dilation=5)
    D5 = torch.zeros_like(D)
    D5[0, 0, 0:3, 0:3] = 1
    D5[0, 1, 2:5, 3:6] = 1
    torch.testing.assert_close(m5, 1 + D5)
    # the fused loss applies exactly this map
    pred = torch.rand(1, 2, 5, 6, dtype=torch.float64) + 0.1
    for dil, w, thr in ((3, 10.0, 0.2), (1, 2.0, 0.2), (5, 1.0, 0.5)):
        lw = wing.adaptive_wing_loss(pred, t, weight=w, threshold=thr, dilation=dil,
                                     reduction="none")
        l0 = wing.adaptive_wing_loss(pred, t, weight=0.0, reduction="none")
        torch.testing.assert_close(lw, l0 * wing.adaptive_wing_weight_map(t, w, thr, dil))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_awing_grad_vs_reference(device, dtype, reduction):
    pred, target = _heatmaps((2, 2, 7, 8), dtype, device)
    p1 = pred.clone().requires_grad_()
    p2 = pred.clone().requires_grad_()
    o1 = wing.adaptive_wing_loss(p1, target, reduction=reduction)
    o2 = ref.adaptive_wing_loss(p2, target, reduction=reduction)
    g = torch.rand_like(o1)
    o1.backward(g)
    o2.backward(g)
    torch.testing.assert_close(p1.grad, p2.grad, **_tol(dtype))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_awing_gradcheck(reduction):
    pred, target = _heatmaps((1, 2, 5, 6), torch.float64, "cpu")
    d = _away_from_kinks(pred - target, [0.0, 0.5])
    pred = (target + d).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p: wing.adaptive_wing_loss(p, target, reduction=reduction), (pred,))


def test_awing_grad_at_zero_is_zero_and_finite():
    # targets above alpha - 1 make the exponent < 1: the true derivative at d = 0 is infinite
    target = torch.tensor([0.0, 0.5, 1.0, 1.5, 1.9], dtype=torch.float64).view(1, 1, 1, 5)
    for dtype in DTYPES:
        p = target.clone().to(dtype).requires_grad_()
        out = wing.adaptive_wing_loss(p, target.to(dtype), reduction="sum")
        out.backward()
        assert torch.isfinite(out)
        assert torch.equal(p.grad, torch.zeros_like(p))


def test_awing_deterministic_across_threads():
    pred, target = _heatmaps((2, 8, 32, 32), torch.float32, "cpu")
    old = torch.get_num_threads()
    try:
        outs = []
        for nt in (1, 2):
            torch.set_num_threads(nt)
            outs.append(wing.adaptive_wing_loss(pred, target))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1])


def test_awing_float_edge_lanes_match_reference():
    # lanes the vectorised float path hands to the exact scalar code
    target = torch.tensor([0.0, 0.0, 0.5, 0.0, 0.3, 0.9], dtype=torch.float32)
    pred = torch.tensor([0.0, 1e-40, 0.5, 1e-30, 0.3 + 1e-7, 0.2], dtype=torch.float32)
    out = wing.adaptive_wing_loss(pred.view(1, 1, 2, 3), target.view(1, 1, 2, 3),
                                  reduction="none")
    exp = ref.adaptive_wing_loss(pred.double().view(1, 1, 2, 3),
                                 target.double().view(1, 1, 2, 3), reduction="none")
    torch.testing.assert_close(out.double(), exp, rtol=1e-5, atol=1e-6)


def test_awing_target_gets_no_grad():
    pred, target = _heatmaps((1, 1, 4, 4), torch.float64, "cpu")
    target.requires_grad_()
    p = pred.clone().requires_grad_()
    wing.adaptive_wing_loss(p, target).backward()
    assert p.grad is not None and target.grad is None


def test_awing_module():
    m = wing.AdaptiveWingLoss(reduction="sum", dilation=5)
    pred, target = _heatmaps((1, 2, 6, 6), torch.float64, "cpu")
    torch.testing.assert_close(m(pred, target),
                               ref.adaptive_wing_loss(pred, target, dilation=5, reduction="sum"))
    assert "dilation=5" in repr(m)


# ------------------------------------------------------------ opcheck, edge cases
@needs_c
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_opcheck(reduction):
    ops = torch.ops.pyface3d
    pred, target = _wing_inputs((2, 4, 3), torch.float64, "cpu")
    pred.requires_grad_()
    torch.library.opcheck(ops.wing_loss.default, (pred, target, 10.0, 2.1, reduction))
    g = torch.randn(pred.shape if reduction == "none" else (), dtype=torch.float64)
    torch.library.opcheck(ops._wing_loss_backward.default,
                          (g, pred.detach(), target, 10.0, 2.1, reduction))
    hp, ht = _heatmaps((1, 2, 5, 4), torch.float64, "cpu")
    hp.requires_grad_()
    args = (2.1, 14.0, 1.0, 0.5, 10.0, 0.2, 3, reduction)
    torch.library.opcheck(ops.adaptive_wing_loss.default, (hp, ht) + args)
    g = torch.randn(hp.shape if reduction == "none" else (), dtype=torch.float64)
    torch.library.opcheck(ops._adaptive_wing_loss_backward.default, (g, hp.detach(), ht) + args)


@pytest.mark.parametrize("shape", [(0, 5, 3), (2, 0, 3), (2, 5, 0)])
def test_wing_empty(device, shape):
    pred = torch.zeros(shape, device=device, requires_grad=True)
    target = torch.zeros(shape, device=device)
    assert torch.isnan(wing.wing_loss(pred, target))
    assert wing.wing_loss(pred, target, reduction="sum").item() == 0
    out = wing.wing_loss(pred, target, reduction="none")
    assert out.shape == shape
    out.sum().backward()
    assert pred.grad.shape == shape


@pytest.mark.parametrize("shape", [(0, 2, 4, 4), (1, 0, 4, 4), (1, 2, 0, 4), (1, 2, 4, 0)])
def test_awing_empty(device, shape):
    pred = torch.zeros(shape, device=device, requires_grad=True)
    target = torch.zeros(shape, device=device)
    assert torch.isnan(wing.adaptive_wing_loss(pred, target))
    assert wing.adaptive_wing_loss(pred, target, reduction="sum").item() == 0
    out = wing.adaptive_wing_loss(pred, target, reduction="none")
    assert out.shape == shape
    wing.adaptive_wing_loss(pred, target, reduction="sum").backward()
    assert pred.grad.shape == shape
    assert wing.adaptive_wing_weight_map(target).shape == shape


def test_non_contiguous(device):
    base_p, base_t = _wing_inputs((3, 4, 10), torch.float64, device)
    pred = base_p.transpose(1, 2)  # (3, 10, 4) view
    target = base_t[:, :, :8].transpose(1, 2).narrow(1, 0, 8)  # (3, 8, 4)
    pred = pred.narrow(1, 1, 8)
    assert not pred.is_contiguous() and not target.is_contiguous()
    for red in REDUCTIONS:
        out = wing.wing_loss(pred, target, reduction=red)
        torch.testing.assert_close(out, ref.wing_loss(pred.contiguous(), target.contiguous(),
                                                      reduction=red))
        assert out.is_contiguous()
    hp, ht = _heatmaps((2, 3, 6, 7), torch.float64, device)
    hp, ht = hp.transpose(2, 3), ht.transpose(2, 3)
    for red in REDUCTIONS:
        out = wing.adaptive_wing_loss(hp, ht, reduction=red)
        torch.testing.assert_close(out, ref.adaptive_wing_loss(hp.contiguous(), ht.contiguous(),
                                                               reduction=red))
        assert out.is_contiguous()
    # gradient through a non-contiguous view and an expanded grad_output
    p = hp.detach().clone().requires_grad_()
    wing.adaptive_wing_loss(p.transpose(2, 3), ht.transpose(2, 3),
                            reduction="none").sum().backward()
    p2 = hp.detach().clone().requires_grad_()
    ref.adaptive_wing_loss(p2.transpose(2, 3), ht.transpose(2, 3),
                           reduction="none").sum().backward()
    torch.testing.assert_close(p.grad, p2.grad)


@pytest.mark.parametrize("impl", ["op", "ref"])
def test_wing_bad_inputs(impl):
    f = wing.wing_loss if impl == "op" else ref.wing_loss
    p = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="target"):
        f(p, torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="pred"):
        f(torch.zeros(6, 2), torch.zeros(6, 2))
    with pytest.raises(TypeError, match="target"):
        f(p, p.double())
    with pytest.raises(TypeError, match="pred"):
        f(p.half(), p.half())
    with pytest.raises(TypeError, match="pred"):
        f(p.long(), p.long())
    with pytest.raises(ValueError, match="omega"):
        f(p, p, omega=0.0)
    with pytest.raises(ValueError, match="omega"):
        f(p, p, omega=float("nan"))
    with pytest.raises(ValueError, match="epsilon"):
        f(p, p, epsilon=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        f(p, p, reduction="avg")


@pytest.mark.parametrize("impl", ["op", "ref"])
def test_awing_bad_inputs(impl):
    f = wing.adaptive_wing_loss if impl == "op" else ref.adaptive_wing_loss
    p = torch.zeros(1, 2, 4, 4)
    with pytest.raises(ValueError, match="target"):
        f(p, torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="pred"):
        f(torch.zeros(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.raises(TypeError, match="target"):
        f(p, p.double())
    with pytest.raises(ValueError, match="dilation"):
        f(p, p, dilation=2)
    with pytest.raises(ValueError, match="dilation"):
        f(p, p, dilation=0)
    with pytest.raises(ValueError, match="omega"):
        f(p, p, omega=-1.0)
    with pytest.raises(ValueError, match="theta"):
        f(p, p, theta=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        f(p, p, epsilon=0.0)
    with pytest.raises(ValueError, match="weight"):
        f(p, p, weight=-1.0)
    with pytest.raises(ValueError, match="reduction"):
        f(p, p, reduction="max")
    with pytest.raises(ValueError, match="dilation"):
        wing.adaptive_wing_weight_map(p, dilation=4)


@needs_c
def test_backward_ops_bad_grad_output():
    ops = torch.ops.pyface3d
    p = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="grad_output"):
        ops._wing_loss_backward(torch.zeros(2), p, p, 10.0, 2.0, "mean")
    with pytest.raises(ValueError, match="grad_output"):
        ops._wing_loss_backward(torch.zeros(()), p, p, 10.0, 2.0, "none")
    with pytest.raises(TypeError, match="grad_output"):
        ops._wing_loss_backward(torch.zeros((), dtype=torch.float64), p, p, 10.0, 2.0, "sum")
    h = torch.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="grad_output"):
        ops._adaptive_wing_loss_backward(torch.zeros(1, 1, 3, 4), h, h, 2.1, 14.0, 1.0, 0.5,
                                         10.0, 0.2, 3, "none")


@pytest.mark.cuda
def test_mixed_devices_raise():
    p = torch.zeros(1, 3, 2)
    with pytest.raises(RuntimeError, match="target"):
        wing.wing_loss(p, p.cuda())
    with pytest.raises(RuntimeError, match="target"):
        wing.wing_loss(p.cuda(), p)
    h = torch.zeros(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="target"):
        wing.adaptive_wing_loss(h.cuda(), h)


@pytest.mark.cuda
def test_cuda_deterministic_and_matches_cpu():
    pred, target = _wing_inputs((4, 5000, 3), torch.float32, "cpu")
    a = wing.wing_loss(pred.cuda(), target.cuda())
    b = wing.wing_loss(pred.cuda(), target.cuda())
    assert torch.equal(a, b)
    torch.testing.assert_close(a.cpu(), wing.wing_loss(pred, target), rtol=1e-5, atol=1e-5)
    hp, ht = _heatmaps((2, 5, 16, 16), torch.float32, "cpu")
    a = wing.adaptive_wing_loss(hp.cuda(), ht.cuda(), reduction="sum")
    assert torch.equal(a, wing.adaptive_wing_loss(hp.cuda(), ht.cuda(), reduction="sum"))
    torch.testing.assert_close(a.cpu(), wing.adaptive_wing_loss(hp, ht, reduction="sum"),
                               rtol=1e-5, atol=1e-4)


@needs_c
def test_cuda_kernels_registered_when_built_with_cuda():
    import json

    info = json.loads(_lib._C.build_info())
    for op in ("wing_loss", "_wing_loss_backward", "adaptive_wing_loss",
               "_adaptive_wing_loss_backward"):
        assert _lib.has_kernel(op, "CPU")
        assert _lib.has_kernel(op, "CUDA") == bool(info["with_cuda"])
