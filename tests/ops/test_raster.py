"""Tests of the raster family: rasterize, interpolate (+ backward), render_depth,
render_pncc, ncc_code."""
import math

import pytest
import torch

from pyface3d.ops import _lib
from pyface3d.ops import raster
from pyface3d.ops import _reference_raster as ref

needs_c = pytest.mark.skipif(not _lib.HAS_C, reason="pyface3d._C is not built")
DTYPES = [torch.float32, torch.float64]


def random_mesh(B=2, N=40, F=60, H=24, W=28, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(B, N, 3, generator=g, dtype=torch.float64)
    v = v * torch.tensor([W + 6.0, H + 6.0, 10.0], dtype=torch.float64) - 3
    # put a third of the vertices exactly on pixel centres / half pixels (edge cases)
    v[:, ::3, :2] = torch.round(v[:, ::3, :2] * 2) / 2
    t = torch.randint(0, N, (F, 3), generator=g, dtype=torch.int32)
    return v.to(dtype).to(device), t.to(device)


def grid_mesh(n=5, step=2.0, jitter=0.0, seed=0):
    """A planar (n x n) vertex grid; vertices on pixel centres when jitter = 0."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(n, dtype=torch.float64),
                            torch.arange(n, dtype=torch.float64), indexing="ij")
    v = torch.stack([xs * step + 1, ys * step + 1, torch.zeros_like(xs)], -1).reshape(-1, 3)
    v[:, :2] += jitter * (torch.rand(n * n, 2, generator=g, dtype=torch.float64) - 0.5)
    idx = torch.arange(n * n).reshape(n, n)
    a, b = idx[:-1, :-1].reshape(-1), idx[:-1, 1:].reshape(-1)
    c, d = idx[1:, :-1].reshape(-1), idx[1:, 1:].reshape(-1)
    t = torch.cat([torch.stack([a, b, d], 1), torch.stack([a, d, c], 1)]).to(torch.int32)
    return v[None], t


def coverage_count(v, t, H, W):
    cnt = torch.zeros(v.shape[0], H, W, dtype=torch.int64)
    for k in range(t.shape[0]):
        cnt += (raster.rasterize(v, t[k:k + 1], H, W)[0] >= 0).long()
    return cnt


# ---------------------------------------------------------------- known answers
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flip", [False, True])
def test_one_triangle_top_left_rule(dtype, flip):
    v = torch.tensor([[[1.0, 1.0, 2.0], [5.0, 1.0, 2.0], [1.0, 5.0, 2.0]]], dtype=dtype)
    t = torch.tensor([[0, 2, 1]] if flip else [[0, 1, 2]], dtype=torch.int32)
    face, bary, depth = raster.rasterize(v, t, 8, 8)
    y, x = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    # top edge y = 1 and left edge x = 1 are included, the hypotenuse x + y = 6 is not
    expected = (x >= 1) & (y >= 1) & (x + y < 6)
    assert torch.equal(face[0] >= 0, expected)
    assert torch.all(depth[0][expected] == 2) and torch.all(depth[0][~expected] == 0)
    assert torch.allclose(bary.sum(-1)[0][expected], torch.ones((), dtype=dtype))
    # vertex 0 sits on the centre (1, 1): bary (1, 0, 0)
    assert torch.equal(bary[0, 1, 1], torch.tensor([1.0, 0, 0], dtype=dtype))


def test_shared_edges_covered_once():
    # square split along the diagonal through centres (2,2), (3,3), (4,4)
    v = torch.tensor([[[1.0, 1, 0], [5, 1, 0], [5, 5, 0], [1, 5, 0]]])
    t = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    cnt = coverage_count(v, t, 8, 8)
    y, x = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    inside = (x >= 1) & (x < 5) & (y >= 1) & (y < 5)
    assert torch.equal(cnt[0], inside.long())


@pytest.mark.parametrize("jitter", [0.0, 0.7])
def test_planar_mesh_covers_every_centre_once(jitter):
    v, t = grid_mesh(6, 2.0, jitter)
    t = t[torch.randperm(t.shape[0])]
    t[::2] = t[::2][:, [0, 2, 1]]  # mixed windings
    cnt = coverage_count(v, t, 14, 14)
    assert cnt.max() <= 1
    if jitter == 0:
        y, x = torch.meshgrid(torch.arange(14), torch.arange(14), indexing="ij")
        inside = (x >= 1) & (x < 11) & (y >= 1) & (y < 11)
        assert torch.equal(cnt[0], inside.long())
    # and the single call agrees with the union
    face = raster.rasterize(v, t, 14, 14)[0]
    assert torch.equal(face[0] >= 0, cnt[0] > 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depth_planar_exact(dtype):
    a, b, c = 0.25, -0.5, 3.0
    xy = torch.tensor([[0.3, 0.2], [9.7, 1.1], [2.2, 8.9]], dtype=torch.float64)
    z = a * xy[:, 0] + b * xy[:, 1] + c
    v = torch.cat([xy, z[:, None]], 1)[None].to(dtype)
    face, bary, depth = raster.rasterize(v, torch.tensor([[0, 1, 2]]), 10, 10)
    y, x = torch.meshgrid(torch.arange(10.0), torch.arange(10.0), indexing="ij")
    plane = (a * x + b * y + c).to(dtype)
    m = face[0] >= 0
    assert m.sum() > 20
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(depth[0][m], plane[m], atol=tol, rtol=tol)
    # bary reproduces the pixel position
    pos = torch.einsum("hwk,kc->hwc", bary[0].double(), xy)
    torch.testing.assert_close(pos[m], torch.stack([x, y], -1)[m].double(), atol=tol * 10,
                               rtol=0)


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_occlusion_nearer_wins(order):
    near = [[0.0, 0.0, 5.0], [9.0, 0.0, 5.0], [0.0, 9.0, 5.0]]
    far = [[0.0, 0.0, 1.0], [9.0, 0.0, 1.0], [0.0, 9.0, 1.0]]
    tris = [near, far]
    v = torch.tensor([tris[order[0]] + tris[order[1]]])
    t = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    face, _, depth = raster.rasterize(v, t, 10, 10)
    m = face[0] >= 0
    assert torch.all(face[0][m] == order.index(0))
    assert torch.all(depth[0][m] == 5)


def test_exact_tie_smaller_face():
    tri = [[0.0, 0.0, 2.0], [9.0, 0.0, 2.0], [0.0, 9.0, 2.0]]
    v = torch.tensor([tri + tri + tri])
    t = torch.tensor([[6, 7, 8], [3, 4, 5], [0, 2, 1]], dtype=torch.int32)
    face = raster.rasterize(v, t, 10, 10)[0]
    m = face[0] >= 0
    assert m.any() and torch.all(face[0][m] == 0)
    face_ref = ref.rasterize(v, t, 10, 10)[0]
    assert torch.equal(face, face_ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_roi_window_is_crop(dtype):
    v, t = random_mesh(B=2, N=60, F=120, H=40, W=50, dtype=dtype, seed=3)
    full = raster.rasterize(v, t, 40, 50)
    for (x0, y0, h, w) in [(7, 5, 20, 17), (0, 0, 40, 50), (30, 22, 18, 20), (13, 1, 1, 1)]:
        roi = raster.rasterize(v, t, h, w, x0, y0)
        for a, b in zip(roi, full):
            assert torch.equal(a, b[:, y0:y0 + h, x0:x0 + w])
    # windows partly outside the image (negative origin)
    big = raster.rasterize(v, t, 60, 70, -10, -10)
    for a, b in zip(full, big):
        assert torch.equal(a, b[:, 10:50, 10:60])


def cube_mesh(size=6.0, angle=0.6):
    c = torch.tensor([[x, y, z] for x in (-1.0, 1) for y in (-1.0, 1) for z in (-1.0, 1)],
                     dtype=torch.float64)
    faces = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    t = torch.tensor([[f[0], f[1], f[2]] for f in faces] + [[f[0], f[2], f[3]] for f in faces],
                     dtype=torch.int32)
    ca, sa = math.cos(angle), math.sin(angle)
    R = torch.tensor([[ca, 0, sa], [0, 1, 0], [-sa, 0, ca]], dtype=torch.float64)
    R = R @ torch.tensor([[1, 0, 0], [0, math.cos(0.4), -math.sin(0.4)],
                          [0, math.sin(0.4), math.cos(0.4)]], dtype=torch.float64)
    v = c @ R.T * size + torch.tensor([12.0, 12.0, 0.0], dtype=torch.float64)
    return v[None], t


def test_cube_depth():
    v, t = cube_mesh()
    face, bary, depth = raster.rasterize(v, t, 24, 24)
    fr, br, dr = ref.rasterize(v, t, 24, 24)
    assert torch.equal(face, fr)
    torch.testing.assert_close(depth, dr, rtol=0, atol=1e-12)
    # depth is the max over the cube's surface along each ray: compare with the
    # analytic front surface of the convex cube (largest z among covering faces)
    m = face[0] >= 0
    assert m.sum() > 150
    # every covered pixel sees a front-facing face: its depth >= the depth of any
    # other face covering it
    for k in range(t.shape[0]):
        dk = raster.rasterize(v, t[k:k + 1], 24, 24)
        mk = dk[0][0] >= 0
        assert torch.all(depth[0][mk] >= dk[2][0][mk])
    # axis aligned: the front face z = 6 everywhere
    v2, t2 = cube_mesh(angle=0.0)
    v2 = torch.cat([v2[..., :2], v2[..., 2:]], -1)
    c = torch.tensor([[x, y, z] for x in (-1.0, 1) for y in (-1.0, 1) for z in (-1.0, 1)],
                     dtype=torch.float64) * 6 + torch.tensor([12.0, 12.0, 0.0])
    d2 = raster.render_depth(c[None], t2, 24, 24)
    assert torch.all(d2[0, 6:18, 6:18] == 6) and d2[0].count_nonzero() == 144


# ---------------------------------------------------------------- vs reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterize_vs_reference(dtype, seed, device):
    v, t = random_mesh(dtype=dtype, seed=seed)
    f0, b0, d0 = ref.rasterize(v, t, 24, 28, 1, -2)
    f1, b1, d1 = raster.rasterize(v.to(device), t.to(device), 24, 28, 1, -2)
    assert torch.equal(f1.cpu(), f0)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(b1.cpu(), b0, **tol)
    torch.testing.assert_close(d1.cpu(), d0, **tol)
    assert (f0 >= 0).any() and (f0 < 0).any()
    assert b1.dtype == dtype and d1.dtype == dtype and f1.dtype == torch.int32


def test_rasterize_threads_deterministic():
    v, t = random_mesh(B=1, N=200, F=400, H=80, W=90, seed=5)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = raster.rasterize(v, t, 80, 90)
        torch.set_num_threads(max(2, old))
        b = raster.rasterize(v, t, 80, 90)
    finally:
        torch.set_num_threads(old)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def small_triangle_mesh(dtype, seed=0):
    """Many small triangles (boxes of 1 to 4 centres, several chunks of work),
    every 37th one large; vertices often on centres / half pixels, integer
    depths (ties), a NaN and an Inf."""
    g = torch.Generator().manual_seed(seed)
    F = 1500
    c = torch.rand(F, 1, 2, generator=g, dtype=torch.float64) * 44 - 2
    d = (torch.rand(F, 3, 2, generator=g, dtype=torch.float64) - 0.5) * 2.5
    d[::37] *= 12
    xy = c + d
    xy[::3] = torch.round(xy[::3] * 2) / 2
    z = torch.randint(0, 4, (F, 3, 1), generator=g).to(torch.float64)
    v = torch.cat([xy, z], -1).reshape(1, F * 3, 3)
    v[0, 10, 0] = float("nan")
    v[0, 20, 2] = float("inf")
    t = torch.arange(F * 3, dtype=torch.int32).reshape(F, 3)
    return v.to(dtype), t


_VARIANT_SCRIPT = """
import sys, torch
sys.path.insert(0, sys.argv[2])
from pyface3d.ops import raster
cases = torch.load(sys.argv[1])
torch.save([raster.rasterize(*c) for c in cases], sys.argv[1] + '.out')
"""


@needs_c
def test_cpu_variants_bit_identical(tmp_path):
    # The CPU kernel has a baseline and an AVX2 variant (picked at run time);
    # PYFACE3D_RASTER_BASELINE=1 forces the baseline in a fresh process.
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(raster.__file__)))
    cases = []
    for dtype in DTYPES:
        v, t = small_triangle_mesh(dtype)
        cases += [(v, t, 40, 44, 0, 0), (v, t, 23, 17, 5, -3)]
        v, t = random_mesh(B=2, N=60, F=90, H=24, W=28, dtype=dtype, seed=3)
        cases.append((v, t, 24, 28, 0, 0))
        # large triangles, odd window widths (the 4-centre steps of large boxes end mid-step)
        v, t = random_mesh(B=1, N=20, F=15, H=53, W=67, dtype=dtype, seed=5)
        cases += [(v, t, 53, 67, 0, 0), (v, t, 41, 37, 3, 2)]
    path = str(tmp_path / "cases.pt")
    torch.save(cases, path)
    env = dict(os.environ, PYFACE3D_RASTER_BASELINE="1")
    subprocess.run([sys.executable, "-c", _VARIANT_SCRIPT, path, root], env=env, check=True)
    base = torch.load(path + ".out")
    for c, b in zip(cases, base):
        out = raster.rasterize(*c)
        for x, y in zip(out, b):
            assert torch.equal(x.view(-1).view(torch.uint8), y.view(-1).view(torch.uint8))
        r = ref.rasterize(*c)
        for x, y in zip(out, r):
            assert torch.equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_finite_vertices_cover_nothing(dtype):
    v, t = random_mesh(dtype=dtype, seed=4)
    v[0, 3, 0] = float("nan")
    v[0, 5, 2] = float("inf")
    v[1, 7, 1] = -float("inf")
    v[1, 8] = float("nan")
    f1, b1, d1 = raster.rasterize(v, t, 24, 28)
    f0, b0, d0 = ref.rasterize(v, t, 24, 28)
    assert torch.equal(f1, f0)
    bad = {0: {3, 5}, 1: {7, 8}}
    for b in range(2):
        used = f1[b][f1[b] >= 0].unique()
        for fi in used.tolist():
            assert not (set(t[fi].tolist()) & bad[b])
    assert torch.isfinite(b1).all() and torch.isfinite(d1).all()


def test_degenerate_triangles_cover_nothing():
    v = torch.tensor([[[1.0, 1, 0], [5, 5, 0], [3, 3, 0], [2, 2, 0], [2, 2, 0]]])
    t = torch.tensor([[0, 1, 2], [3, 4, 0], [3, 3, 3]], dtype=torch.int32)
    face = raster.rasterize(v, t, 8, 8)[0]
    assert torch.all(face == -1)


# ---------------------------------------------------------------- interpolate
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bcast", [False, True])
def test_interpolate_vs_reference(dtype, bcast, device):
    v, t = random_mesh(dtype=dtype, seed=1)
    face, bary, _ = ref.rasterize(v, t, 24, 28)
    attr = torch.randn(1 if bcast else 2, 40, 5, dtype=dtype)
    out0 = ref.interpolate(attr, face, bary, t)
    out1 = raster.interpolate(attr.to(device), face.to(device), bary.to(device), t.to(device))
    torch.testing.assert_close(out1.cpu(), out0)
    assert torch.all(out1.cpu()[face < 0] == 0)
    g = torch.randn_like(out0)
    ga0 = ref.interpolate_backward(g, face, bary, t, 40, bcast)
    if _lib.HAS_C:
        ga1 = torch.ops.pyface3d._interpolate_backward(g.to(device), face.to(device),
                                                      bary.to(device), t.to(device), 40, bcast)
        torch.testing.assert_close(ga1.cpu(), ga0)


@pytest.mark.parametrize("bcast", [False, True])
def test_interpolate_gradcheck(bcast):
    v, t = random_mesh(B=2, N=10, F=12, H=8, W=9, dtype=torch.float64, seed=2)
    face, bary, _ = raster.rasterize(v, t, 8, 9)
    assert (face >= 0).any()
    attr = torch.randn(1 if bcast else 2, 10, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: raster.interpolate(a, face, bary, t), (attr,))
    out = raster.interpolate(attr, face, bary, t)
    g, = torch.autograd.grad(out.square().sum(), attr)
    attr_r = attr.detach().clone().requires_grad_(True)
    g0, = torch.autograd.grad(ref.interpolate(attr_r, face, bary, t).square().sum(), attr_r)
    torch.testing.assert_close(g, g0)


def test_interpolate_backward_deterministic():
    v, t = random_mesh(B=16, N=40, F=80, H=20, W=20, seed=6, dtype=torch.float32)
    face, bary, _ = raster.rasterize(v, t, 20, 20)
    g = torch.randn(16, 20, 20, 4)
    outs = []
    old = torch.get_num_threads()
    try:
        for n in (1, max(2, old)):
            torch.set_num_threads(n)
            outs.append(ref.interpolate_backward(g, face, bary, t, 40, True) if not _lib.HAS_C
                        else torch.ops.pyface3d._interpolate_backward(g, face, bary, t, 40, True))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(outs[0], outs[1])


# ---------------------------------------------------------------- opcheck
@needs_c
def test_opcheck():
    v, t = random_mesh(B=2, N=12, F=16, H=8, W=9, dtype=torch.float64, seed=2)
    torch.library.opcheck(torch.ops.pyface3d.rasterize.default, (v, t, 8, 9, 1, -1))
    face, bary, _ = raster.rasterize(v, t, 8, 9)
    attr = torch.randn(2, 12, 3, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.pyface3d.interpolate.default, (attr, face, bary, t))
    attr1 = torch.randn(1, 12, 3, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.pyface3d.interpolate.default, (attr1, face, bary, t))
    g = torch.randn(2, 8, 9, 3, dtype=torch.float64)
    for bc in (False, True):
        torch.library.opcheck(torch.ops.pyface3d._interpolate_backward.default,
                              (g, face, bary, t, 12, bc))


# ---------------------------------------------------------------- layout, empty
def test_empty_inputs():
    v = torch.zeros(0, 5, 3)
    t = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    f, b, d = raster.rasterize(v, t, 4, 5)
    assert f.shape == (0, 4, 5) and b.shape == (0, 4, 5, 3) and d.shape == (0, 4, 5)
    v = torch.rand(2, 5, 3)
    f, b, d = raster.rasterize(v, torch.zeros(0, 3, dtype=torch.int32), 4, 5)
    assert torch.all(f == -1) and torch.all(b == 0) and torch.all(d == 0)
    f, b, d = raster.rasterize(torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.int32), 4, 5)
    assert f.shape == (2, 4, 5) and torch.all(f == -1)
    out = raster.interpolate(torch.rand(1, 5, 2), f, b, torch.zeros(0, 3, dtype=torch.int32))
    assert out.shape == (2, 4, 5, 2) and torch.all(out == 0)
    fe = torch.zeros(0, 4, 5, dtype=torch.int32)
    out = raster.interpolate(torch.rand(1, 5, 2), fe, torch.zeros(0, 4, 5, 3), t)
    assert out.shape == (0, 4, 5, 2)
    if _lib.HAS_C:
        g = torch.ops.pyface3d._interpolate_backward(torch.zeros(0, 4, 5, 2), fe,
                                                     torch.zeros(0, 4, 5, 3), t, 5, True)
        assert g.shape == (1, 5, 2) and torch.all(g == 0)


def test_non_contiguous_and_int64():
    v, t = random_mesh(dtype=torch.float64, seed=7)
    vt = v.transpose(1, 2).contiguous().transpose(1, 2)  # same values, strided
    assert not vt.is_contiguous()
    t64 = t.long().t().contiguous().t()
    a = raster.rasterize(vt, t64, 24, 28)
    b = raster.rasterize(v, t, 24, 28)
    for x, y in zip(a, b):
        assert torch.equal(x, y) and x.is_contiguous()
    attr = torch.randn(2, 3, 40, dtype=torch.float64).transpose(1, 2)
    bary_nc = b[1].permute(3, 0, 1, 2).contiguous().permute(1, 2, 3, 0)
    o1 = raster.interpolate(attr, b[0], bary_nc, t64)
    o0 = ref.interpolate(attr, b[0], b[1], t)
    torch.testing.assert_close(o1, o0)


# ---------------------------------------------------------------- bad inputs
@needs_c
def test_bad_inputs():
    v = torch.rand(1, 5, 3)
    t = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    with pytest.raises(IndexError, match="triangles"):
        raster.rasterize(v, torch.tensor([[0, 1, 5]], dtype=torch.int32), 4, 4)
    with pytest.raises(IndexError, match="triangles"):
        raster.rasterize(v, torch.tensor([[0, -1, 2]]), 4, 4)
    with pytest.raises(ValueError, match="vertices"):
        raster.rasterize(torch.rand(5, 3), t, 4, 4)
    with pytest.raises(ValueError, match="vertices"):
        raster.rasterize(torch.rand(1, 5, 2), t, 4, 4)
    with pytest.raises(ValueError, match="triangles"):
        raster.rasterize(v, torch.tensor([[0, 1]], dtype=torch.int32), 4, 4)
    with pytest.raises(TypeError, match="vertices"):
        raster.rasterize(v.half(), t, 4, 4)
    with pytest.raises(TypeError, match="triangles"):
        raster.rasterize(v, t.float(), 4, 4)
    with pytest.raises(ValueError, match="height"):
        raster.rasterize(v, t, 0, 4)
    with pytest.raises(ValueError, match="width"):
        raster.rasterize(v, t, 4, -1)
    with pytest.raises(ValueError, match="bary"):
        raster.rasterize(torch.rand(64, 5, 3), t, 4096, 4096)  # 64*4096*4096*3 > int32
    with pytest.raises(ValueError, match="x0"):
        raster.rasterize(v, t, 4, 4, 1 << 40, 0)
    f, b, _ = raster.rasterize(v, t, 4, 4)
    with pytest.raises(IndexError, match="face_index"):
        raster.interpolate(torch.rand(1, 5, 2), torch.full_like(f, 3), b, t)
    with pytest.raises(IndexError, match="face_index"):
        raster.interpolate(torch.rand(1, 5, 2), torch.full_like(f, -2), b, t)
    with pytest.raises(IndexError, match="triangles"):
        raster.interpolate(torch.rand(1, 2, 2), f, b, t)
    with pytest.raises(ValueError, match="attributes"):
        raster.interpolate(torch.rand(3, 5, 2), f, b, t)
    with pytest.raises(ValueError, match="bary"):
        raster.interpolate(torch.rand(1, 5, 2), f, b[..., :2], t)
    with pytest.raises(TypeError, match="bary"):
        raster.interpolate(torch.rand(1, 5, 2), f, b.double(), t)
    with pytest.raises(TypeError, match="face_index"):
        raster.interpolate(torch.rand(1, 5, 2), f.long(), b, t)
    with pytest.raises(ValueError, match="grad"):
        torch.ops.pyface3d._interpolate_backward(torch.rand(2, 4, 4, 2), f, b, t, 5, False)
    with pytest.raises(IndexError, match="triangles"):
        torch.ops.pyface3d._interpolate_backward(torch.rand(1, 4, 4, 2), f, b, t, 2, False)


@pytest.mark.cuda
def test_mixed_devices_raise():
    v = torch.rand(1, 5, 3, device="cuda")
    t = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    with pytest.raises(RuntimeError, match="triangles"):
        raster.rasterize(v, t, 4, 4)
    f, b, _ = raster.rasterize(v, t.cuda(), 4, 4)
    with pytest.raises(RuntimeError, match="face_index"):
        raster.interpolate(torch.rand(1, 5, 2, device="cuda"), f.cpu(), b, t.cuda())


# ---------------------------------------------------------------- convenience
def test_render_depth_pncc_ncc():
    v, t = cube_mesh()
    mean = v[0]
    ncc = raster.ncc_code(mean)
    assert ncc.shape == (8, 3)
    torch.testing.assert_close(ncc.amin(0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(ncc.amax(0), torch.ones(3, dtype=torch.float64))
    d = raster.render_depth(v, t, 24, 24)
    assert torch.equal(d, raster.rasterize(v, t, 24, 24)[2])
    p = raster.render_pncc(v, t, ncc, 24, 24)
    face, bary, _ = raster.rasterize(v, t, 24, 24)
    torch.testing.assert_close(p, ref.interpolate(ncc[None], face, bary, t))
    assert p.shape == (1, 24, 24, 3) and torch.all(p[face < 0] == 0)
    assert p.min() >= 0 and p.max() <= 1 + 1e-12
    torch.testing.assert_close(p, ref.render_pncc(v, t, ncc, 24, 24))
    mod = raster.PNCCRenderer(t, mean, 24, 24)
    torch.testing.assert_close(mod(v), p)
    r = raster.Rasterizer(24, 24)
    assert torch.equal(r(v, t)[0], face)
    # constant axis -> 0
    assert torch.all(raster.ncc_code(torch.ones(4, 3)) == 0)
