import math

import pytest
import torch

from pyface3d.ops import _lib
from pyface3d.ops import _reference_heatmap as ref
from pyface3d.ops import heatmap

needs_c = pytest.mark.skipif(not _lib.HAS_C, reason="pyface3d._C is not built")
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def rand_points(B, K, H, W, dtype=torch.float32, device="cpu", margin=0.0):
    lo = torch.tensor([margin, margin], dtype=torch.float64)
    hi = torch.tensor([W - 1 - margin, H - 1 - margin], dtype=torch.float64)
    p = lo + torch.rand(B, K, 2, dtype=torch.float64) * (hi - lo)
    return p.to(dtype=dtype, device=device)


# ---------------------------------------------------------------- encode ----
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("out_dtype", [None, torch.float16, torch.float64])
@pytest.mark.parametrize("unbiased", [True, False])
def test_encode_vs_reference(device, dtype, out_dtype, unbiased):
    B, K, H, W = 3, 7, 20, 24
    pts = rand_points(B, K, H, W, dtype, device, margin=-1.5)  # some outside the map
    vis = torch.rand(B, K, device=device) > 0.2
    hm, w = heatmap.heatmap_encode(pts, vis, H, W, 1.7, unbiased, out_dtype)
    hr, wr = ref.heatmap_encode(pts, vis, H, W, 1.7, unbiased, out_dtype)
    assert hm.dtype == (out_dtype or torch.float32) and hm.shape == (B, K, H, W)
    assert w.dtype == torch.float32 and w.shape == (B, K)
    assert torch.equal(w, wr)
    if hm.dtype == torch.float16:
        torch.testing.assert_close(hm, hr, rtol=1e-3, atol=1e-4)
    else:
        tol = TOL[torch.float64 if torch.float64 in (dtype, hm.dtype) else torch.float32]
        torch.testing.assert_close(hm, hr, **tol)


def test_encode_known_values():
    H, W, s = 15, 17, 1.5
    pts = torch.tensor([[[8.0, 7.0], [3.0, 2.0]]])
    hm, w = heatmap.heatmap_encode(pts, None, H, W, s)
    assert torch.equal(w, torch.ones(1, 2))
    m = hm[0, 0]
    assert m[7, 8] == 1.0 and m.max() == 1.0
    # symmetric around the peak
    c = m[7 - 4:7 + 5, 8 - 4:8 + 5]
    torch.testing.assert_close(c, c.flip(0))
    torch.testing.assert_close(c, c.flip(1))
    torch.testing.assert_close(c, c.t())
    # exact value, and zero outside the 3 sigma square window
    assert m[7, 9].item() == pytest.approx(math.exp(-1 / (2 * s * s)), rel=1e-6)
    assert m[8, 9].item() == pytest.approx(math.exp(-2 / (2 * s * s)), rel=1e-6)
    assert m[7, 8 + 4].item() == pytest.approx(math.exp(-16 / (2 * s * s)), rel=1e-6)  # 4 <= 4.5
    assert m[7, 8 + 5] == 0 and m[7, 8 - 5] == 0 and m[7 + 5, 8] == 0
    assert m[11, 12].item() > 0  # corner of the square window (|dx| = |dy| = 4)
    # sub-pixel point, biased: the same map as the rounded point
    b, _ = heatmap.heatmap_encode(torch.tensor([[[8.4, 6.6]]]), None, H, W, s, unbiased=False)
    torch.testing.assert_close(b[0, 0], m, rtol=0, atol=0)
    u, _ = heatmap.heatmap_encode(torch.tensor([[[8.4, 6.6]]]), None, H, W, s, unbiased=True)
    assert u[0, 0].max() < 1.0
    assert u[0, 0, 7, 8].item() == pytest.approx(math.exp(-(0.16 + 0.16) / (2 * s * s)),
                                                 rel=1e-6)


def test_encode_invisible_and_out_of_map():
    H, W = 10, 12
    pts = torch.tensor([[[5.0, 5.0], [5.0, 5.0], [-0.6, 3.0], [-0.4, 3.0], [11.49, 9.49],
                         [11.5, 3.0], [float("nan"), 2.0], [3.0, float("inf")]]])
    vis = torch.tensor([[1.0, 0.0, 1, 1, 1, 1, 1, 1]])
    hm, w = heatmap.heatmap_encode(pts, vis, H, W, 1.0)
    assert w.tolist() == [[1, 0, 0, 1, 1, 0, 0, 0]]
    assert (hm[0, w[0] == 0] == 0).all()
    assert (hm[0, w[0] == 1].amax((-1, -2)) > 0).all()
    # visibility dtypes: bool, int, float with NaN (not visible)
    for v in (vis > 0, vis.long(), torch.where(vis > 0, vis, float("nan"))):
        hm2, w2 = heatmap.heatmap_encode(pts, v, H, W, 1.0)
        assert torch.equal(w2, w) and torch.equal(hm2, hm)


def test_encode_half_output():
    pts = rand_points(2, 5, 16, 16)
    h16, _ = heatmap.heatmap_encode(pts, None, 16, 16, 2.0, dtype=torch.float16)
    h32, _ = heatmap.heatmap_encode(pts, None, 16, 16, 2.0)
    assert h16.dtype == torch.float16
    assert torch.equal(h16, h32.half())


def test_encode_module_and_noncontiguous():
    pts = rand_points(4, 6, 16, 18, torch.float64)
    full = torch.cat([pts, pts], -1)  # (B, K, 4)
    view = full[..., 1:3].flip(-1)  # non-contiguous (x, y)
    vis = torch.ones(6, 4).t()  # non-contiguous (B, K)
    enc = heatmap.HeatmapEncoder(16, 18, 1.5)
    hm, w = enc(view, vis)
    hr, wr = ref.heatmap_encode(view.contiguous(), vis.contiguous(), 16, 18, 1.5)
    assert hm.is_contiguous()
    torch.testing.assert_close(hm, hr, **TOL[torch.float64])
    assert "sigma=1.5" in repr(enc)


def test_encode_empty():
    for B, K in [(0, 5), (3, 0)]:
        hm, w = heatmap.heatmap_encode(torch.zeros(B, K, 2), None, 8, 9, 2.0)
        assert hm.shape == (B, K, 8, 9) and w.shape == (B, K)


def test_encode_bad_inputs():
    p = torch.zeros(2, 3, 2)
    with pytest.raises(ValueError, match="points"):
        heatmap.heatmap_encode(torch.zeros(2, 3, 3), None, 8, 8, 2.0)
    with pytest.raises(TypeError, match="points"):
        heatmap.heatmap_encode(p.long(), None, 8, 8, 2.0)
    with pytest.raises(ValueError, match="sigma"):
        heatmap.heatmap_encode(p, None, 8, 8, 0.0)
    with pytest.raises(ValueError, match="sigma"):
        heatmap.heatmap_encode(p, None, 8, 8, float("nan"))
    with pytest.raises(ValueError, match="height"):
        heatmap.heatmap_encode(p, None, 0, 8, 2.0)
    with pytest.raises(ValueError, match="width"):
        heatmap.heatmap_encode(p, None, 8, -1, 2.0)
    with pytest.raises(TypeError, match="dtype"):
        heatmap.heatmap_encode(p, None, 8, 8, 2.0, dtype=torch.int32)
    if _lib.HAS_C:
        with pytest.raises(ValueError, match="visibility"):
            heatmap.heatmap_encode(p, torch.ones(3, 2), 8, 8, 2.0)
        with pytest.raises(TypeError, match="visibility"):
            heatmap.heatmap_encode(p, torch.ones(2, 3, dtype=torch.complex64), 8, 8, 2.0)
        with pytest.raises(ValueError, match="heatmap_encode"):
            heatmap.heatmap_encode(p, None, 2**40, 2**40, 2.0)


# ---------------------------------------------------------------- decode ----
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
@pytest.mark.parametrize("refine", ["none", "quarter", "dark"])
def test_decode_vs_reference(device, dtype, refine):
    B, K, H, W = 3, 5, 19, 23
    pts = rand_points(B, K, H, W, torch.float64, margin=-0.3)
    hm, _ = ref.heatmap_encode(pts, None, H, W, 2.0, dtype=torch.float64)
    hm = (hm + 0.05 * torch.rand(B, K, H, W, dtype=torch.float64)).to(dtype).to(device)
    c, s = heatmap.heatmap_decode(hm, refine, 7)
    cr, sr = ref.heatmap_decode(hm, refine, 7)
    cd = torch.float64 if dtype == torch.float64 else torch.float32
    assert c.dtype == cd and s.dtype == cd and c.shape == (B, K, 2) and s.shape == (B, K)
    assert torch.equal(s, sr)
    if refine == "dark":
        tol = dict(rtol=0, atol=1e-9) if dtype == torch.float64 else dict(rtol=0, atol=2e-4)
        torch.testing.assert_close(c, cr, **tol)
    else:
        assert torch.equal(c, cr)


def test_decode_argmax_ties_and_nan():
    hm = torch.zeros(1, 5, 4, 6)
    hm[0, 0, 1, 2] = 3.0
    hm[0, 0, 2, 1] = 3.0  # tie: the first in row-major order wins
    hm[0, 1] = float("nan")  # all NaN
    hm[0, 2] = float("nan")
    hm[0, 2, 3, 5] = -1.0  # NaN smaller than any number
    hm[0, 3] = -float("inf")
    hm[0, 3, 0, 0] = float("nan")  # -inf beats NaN
    hm[0, 4, 2, 3] = float("inf")
    c, s = heatmap.heatmap_decode(hm)
    assert c[0].tolist() == [[2, 1], [0, 0], [5, 3], [1, 0], [3, 2]]
    assert s[0, 0] == 3 and math.isnan(s[0, 1]) and s[0, 2] == -1
    assert s[0, 3] == -float("inf") and s[0, 4] == float("inf")
    cr, sr = ref.heatmap_decode(hm)
    assert torch.equal(c, cr)
    torch.testing.assert_close(s, sr, equal_nan=True)
    for refine in ("quarter", "dark"):  # NaN/inf maps must not crash or differ
        c1, _ = heatmap.heatmap_decode(hm, refine, 3)
        c2, _ = ref.heatmap_decode(hm, refine, 3)
        torch.testing.assert_close(c1, c2, equal_nan=True)


def test_decode_quarter_direction():
    hm = torch.zeros(1, 4, 7, 7)
    hm[0, :, 3, 3] = 1.0
    hm[0, 0, 3, 4] = 0.5  # right neighbour larger -> +x
    hm[0, 1, 2, 3] = 0.5  # upper neighbour larger -> -y
    hm[0, 2, 3, 2] = 0.5
    hm[0, 2, 4, 3] = 0.5  # -x, +y
    hm[0, 3, 0, 0] = 2.0  # argmax at the border: no refinement
    c, _ = heatmap.heatmap_decode(hm, "quarter")
    assert c[0].tolist() == [[3.25, 3.0], [3.0, 2.75], [2.75, 3.25], [0.0, 0.0]]


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_encode_decode_round_trip_dark(sigma):
    H = W = 48
    pts = rand_points(4, 17, H, W, torch.float64, margin=6.0)
    hm, _ = heatmap.heatmap_encode(pts, None, H, W, sigma, unbiased=True)
    c, s = heatmap.heatmap_decode(hm, "dark", 11)
    assert (c.double() - pts).abs().max() < 0.05
    assert (s <= 1).all() and (s > 0.8).all()
    c0, _ = heatmap.heatmap_decode(hm, "none")
    assert ((c0.double() - pts).abs() <= 0.5 + 1e-6).all()
    cq, _ = heatmap.heatmap_decode(hm, "quarter")
    assert (cq.double() - pts).abs().mean() < (c0.double() - pts).abs().mean()
    # biased encoding decodes exactly to the rounded point
    hb, _ = heatmap.heatmap_encode(pts, None, H, W, sigma, unbiased=False)
    cb, sb = heatmap.heatmap_decode(hb)
    assert torch.equal(cb.double(), torch.floor(pts + 0.5)) and (sb == 1).all()


def test_dark_reference_blur_matches_direct():
    # the reference blur equals an explicit 2-D Gaussian conv with reflect-101 padding
    x = torch.rand(2, 9, 11, dtype=torch.float64)
    k, r = 5, 2
    s = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-t * t / (2 * s * s))
    g = g / g.sum()
    pad = torch.nn.functional.pad(x[:, None], (r, r, r, r), mode="reflect")
    want = torch.nn.functional.conv2d(pad, (g[:, None] * g[None, :])[None, None])[:, 0]
    torch.testing.assert_close(ref._dark_blur(x, k), want)


def test_decode_dark_large_kernel_and_small_maps():
    hm = torch.rand(2, 3, 6, 7, dtype=torch.float64)  # kernel larger than the map
    c, _ = heatmap.heatmap_decode(hm, "dark", 31)
    cr, _ = ref.heatmap_decode(hm, "dark", 31)
    torch.testing.assert_close(c, cr, rtol=0, atol=1e-9)
    for H, W in [(1, 1), (1, 5), (4, 4)]:
        hm = torch.rand(2, 2, H, W)
        for refine in ("none", "quarter", "dark"):
            c, _ = heatmap.heatmap_decode(hm, refine, 3)
            cr, _ = ref.heatmap_decode(hm, refine, 3)
            assert torch.equal(c, cr)


def test_decode_module_noncontiguous_empty():
    hm = torch.rand(6, 20, 3, 18, dtype=torch.float64).permute(2, 0, 3, 1)  # (3, 6, 18, 20)
    dec = heatmap.HeatmapDecoder("dark", 5)
    c, s = dec(hm)
    cr, sr = ref.heatmap_decode(hm.contiguous(), "dark", 5)
    torch.testing.assert_close(c, cr, rtol=0, atol=1e-9)
    assert torch.equal(s, sr) and c.is_contiguous()
    for B, K in [(0, 3), (2, 0)]:
        c, s = heatmap.heatmap_decode(torch.zeros(B, K, 5, 5), "dark")
        assert c.shape == (B, K, 2) and s.shape == (B, K)


def test_decode_bad_inputs():
    hm = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ValueError, match="heatmaps"):
        heatmap.heatmap_decode(torch.zeros(2, 8, 8))
    with pytest.raises(ValueError, match="heatmaps"):
        heatmap.heatmap_decode(torch.zeros(1, 2, 0, 8))
    with pytest.raises(TypeError, match="heatmaps"):
        heatmap.heatmap_decode(hm.int())
    with pytest.raises(ValueError, match="refine"):
        heatmap.heatmap_decode(hm, "udp")
    for k in (4, 1, -3, 257):
        with pytest.raises(ValueError, match="blur_kernel"):
            heatmap.heatmap_decode(hm, "dark", k)


# ----------------------------------------------------------- soft-argmax ----
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [1.0, 7.5, -2.0])
def test_soft_argmax_vs_reference(device, dtype, beta):
    B, K, H, W = 3, 4, 13, 22  # W not a multiple of 4: vector tail
    x = torch.randn(B, K, H, W, dtype=dtype, device=device) * 3
    c = heatmap.soft_argmax(x, beta)
    cr = ref.soft_argmax(x, beta)
    assert c.dtype == dtype and c.shape == (B, K, 2)
    tol = dict(rtol=1e-5, atol=2e-5) if dtype == torch.float32 else TOL[torch.float64]
    torch.testing.assert_close(c, cr, **tol)
    # gradient parity
    xr = x.clone().requires_grad_()
    g = torch.randn(B, K, 2, dtype=dtype, device=device)
    (gx,) = torch.autograd.grad(heatmap.soft_argmax(xr, beta), xr, g)
    (gr,) = torch.autograd.grad(ref.soft_argmax(xr, beta), xr, g)
    torch.testing.assert_close(gx, gr, **tol)


def test_soft_argmax_known_and_nonfinite():
    hm = torch.full((1, 3, 5, 7), -1e4)
    hm[0, 0, 2, 3] = 0.0
    hm[0, 2, 0, 0] = float("nan")
    c = heatmap.soft_argmax(hm, 1.0)
    assert c[0, 0].tolist() == [3.0, 2.0]
    torch.testing.assert_close(c[0, 1], torch.tensor([3.0, 2.0]))  # uniform -> centre
    assert torch.isnan(c[0, 2]).all()
    big = torch.zeros(1, 1, 4, 4)
    big[0, 0, 1, 2] = 1e30  # huge logits stay finite (max subtracted)
    assert heatmap.soft_argmax(big)[0, 0].tolist() == [2.0, 1.0]


def test_soft_argmax_gradcheck():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: heatmap.soft_argmax(t, 1.7), (x,))
    xt = torch.randn(2, 6, 3, 5, dtype=torch.float64).transpose(1, 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: heatmap.SoftArgmax(0.5)(t), (xt,))


def test_soft_argmax_noncontiguous_empty_bad():
    x = torch.randn(5, 9, 2, 8).permute(2, 3, 0, 1)  # (2, 8, 5, 9)
    torch.testing.assert_close(heatmap.soft_argmax(x), ref.soft_argmax(x.contiguous()),
                               rtol=1e-5, atol=2e-5)
    e = torch.zeros(0, 3, 4, 4, requires_grad=True)
    c = heatmap.soft_argmax(e)
    assert c.shape == (0, 3, 2)
    c.sum().backward()
    assert e.grad.shape == e.shape
    with pytest.raises(ValueError, match="beta"):
        heatmap.soft_argmax(x, float("inf"))
    with pytest.raises(TypeError, match="heatmaps"):
        heatmap.soft_argmax(x.half())
    with pytest.raises(ValueError, match="heatmaps"):
        heatmap.soft_argmax(torch.zeros(3, 4, 4))


@needs_c
def test_soft_argmax_backward_bad_inputs():
    hm = torch.zeros(2, 3, 4, 4)
    op = torch.ops.pyface3d._soft_argmax_backward
    with pytest.raises(ValueError, match="grad_coords"):
        op(torch.zeros(2, 3, 3), hm, torch.zeros(2, 3, 2), 1.0)
    with pytest.raises(TypeError, match="coords"):
        op(torch.zeros(2, 3, 2), hm, torch.zeros(2, 3, 2, dtype=torch.float64), 1.0)


# ------------------------------------------------------------ opcheck -------
@needs_c
def test_opcheck():
    pts = rand_points(2, 3, 9, 10)
    vis = torch.tensor([[1, 0, 1], [1, 1, 1]])
    hm = torch.rand(2, 3, 9, 10)
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64, requires_grad=True)
    c = heatmap.soft_argmax(x.detach())
    cases = [
        (torch.ops.pyface3d.heatmap_encode.default, (pts, vis, 9, 10, 1.5, True, None)),
        (torch.ops.pyface3d.heatmap_encode.default, (pts, None, 9, 10, 1.5, False, torch.float16)),
        (torch.ops.pyface3d.heatmap_decode.default, (hm, "dark", 5)),
        (torch.ops.pyface3d.heatmap_decode.default, (hm.double(), "quarter", 3)),
        (torch.ops.pyface3d.soft_argmax.default, (x, 1.3)),
        (torch.ops.pyface3d._soft_argmax_backward.default,
         (torch.randn(2, 3, 2, dtype=torch.float64), x.detach(), c, 1.3)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


@needs_c
def test_registered_kernels():
    for op in ("heatmap_encode", "heatmap_decode", "soft_argmax", "_soft_argmax_backward"):
        assert _lib.has_kernel(op, "CPU")
        if torch.cuda.is_available():
            assert _lib.has_kernel(op, "CUDA")


@pytest.mark.cuda
@needs_c
def test_mixed_devices_raise():
    pts = torch.zeros(1, 2, 2, device="cuda")
    with pytest.raises(RuntimeError, match="visibility"):
        heatmap.heatmap_encode(pts, torch.ones(1, 2), 8, 8, 2.0)
    hm = torch.zeros(1, 2, 4, 4, device="cuda")
    with pytest.raises(RuntimeError, match="coords"):
        torch.ops.pyface3d._soft_argmax_backward(torch.zeros(1, 2, 2, device="cuda"), hm,
                                                 torch.zeros(1, 2, 2), 1.0)
