"""pyface3d.render: exact depth / PNCC, normals, SH shading, visibility, ROI, texture,
overlay, export, nvdiffrast parity."""
import math

import numpy as np
import pytest
import torch

from pyface3d import render as R
from pyface3d.ops import ncc_code

D = torch.float64


def icosphere(level=3, radius=1.0, center=(0.0, 0.0, 0.0)):
    t = (1 + 5 ** 0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
         [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(level):
        cache, nf = {}, []

        def mid(a, b):
            k = (min(a, b), max(a, b))
            if k not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[k] = len(v) - 1
            return cache[k]
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = nf
    unit = torch.tensor(np.array(v), dtype=D)
    return unit * radius + torch.tensor(center, dtype=D), torch.tensor(f, dtype=torch.int32), unit


# ---------------------------------------------------------------- exact depth and PNCC

def test_triangle_depth_and_pncc_exact():
    # edges x = 0.5, y = 0.5, x + y = 11.5 pass through no pixel centre: coverage is
    # exactly {x >= 1, y >= 1, x + y <= 11} (55 centres); z = 0.25 x + 0.5 y + 3 is planar
    xy = torch.tensor([[0.5, 0.5], [11.0, 0.5], [0.5, 11.0]], dtype=D)
    z = 0.25 * xy[:, 0] + 0.5 * xy[:, 1] + 3
    v = torch.cat([xy, z[:, None]], 1)[None]
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    depth, mask = R.render_depth(v, tri, 14, 16)
    yy, xx = torch.meshgrid(torch.arange(14, dtype=D), torch.arange(16, dtype=D), indexing="ij")
    inside = (xx >= 1) & (yy >= 1) & (xx + yy <= 11)
    assert torch.equal(mask[0], inside) and int(inside.sum()) == 55
    want = torch.where(inside, 0.25 * xx + 0.5 * yy + 3, torch.zeros_like(xx))
    torch.testing.assert_close(depth[0, ..., 0], want, rtol=0, atol=1e-12)
    ncc = ncc_code(v[0])
    pncc, m2 = R.render_pncc(v, tri, ncc, 14, 16)
    assert torch.equal(m2, mask)
    zmin, zmax = float(z.min()), float(z.max())
    want = torch.stack([(xx - 0.5) / 10.5, (yy - 0.5) / 10.5,
                        (0.25 * xx + 0.5 * yy + 3 - zmin) / (zmax - zmin)], -1) * inside[..., None]
    torch.testing.assert_close(pncc[0], want, rtol=0, atol=1e-12)


def cube(lo, hi):
    c = torch.tensor([[lo[0] if i & 1 == 0 else hi[0], lo[1] if i & 2 == 0 else hi[1],
                       lo[2] if i & 4 == 0 else hi[2]] for i in range(8)], dtype=D)
    q = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    tri = torch.tensor([t for a, b, c_, d in q for t in ([a, b, c_], [a, c_, d])],
                       dtype=torch.int32)
    return c, tri


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cube_depth_and_pncc_exact(dtype):
    lo, hi = (2.5, 3.5, -4.0), (12.5, 9.5, 6.0)
    v, tri = cube(lo, hi)
    v = v.to(dtype)[None]
    depth, mask = R.render_depth(v, tri, 16, 20)
    yy, xx = torch.meshgrid(torch.arange(16, dtype=D), torch.arange(20, dtype=D), indexing="ij")
    inside = (xx > 2.5) & (xx < 12.5) & (yy > 3.5) & (yy < 9.5)
    assert torch.equal(mask[0], inside)
    tol = 1e-6 if dtype == torch.float32 else 1e-12  # b0 z + b1 z + b2 z rounds
    torch.testing.assert_close(depth[0, ..., 0].double(), torch.where(inside, 6.0, 0.0).double(),
                               rtol=0, atol=tol)  # the front face
    pncc, _ = R.render_pncc(v, tri, ncc_code(v[0]), 16, 20)
    want = torch.stack([(xx - 2.5) / 10, (yy - 3.5) / 6, torch.ones_like(xx)], -1) * inside[..., None]
    torch.testing.assert_close(pncc[0].double(), want, rtol=0, atol=tol)
    # seen from the back (z flipped) the far face z = 4 becomes the nearest
    vb = v.clone()
    vb[..., 2] = -vb[..., 2]
    db, _ = R.render_depth(vb, tri, 16, 20)
    torch.testing.assert_close(db[0, ..., 0].double(), torch.where(inside, 4.0, 0.0).double(),
                               rtol=0, atol=tol)


# ---------------------------------------------------------------- normals and visibility

def test_sphere_normals_radial_and_face_normals():
    v, tri, unit = icosphere(3, 2.0, (1.0, -1.0, 0.5))
    n = R.vertex_normals(v, tri)
    cos = (n * unit).sum(1)
    assert cos.abs().min() > 0.999
    assert (cos > 0).all() or (cos < 0).all()  # consistent winding
    fn = R.face_normals(v, tri)
    torch.testing.assert_close(fn.norm(dim=1), torch.ones(len(tri), dtype=D))
    nb = R.vertex_normals(v[None].expand(2, -1, -1), tri)
    torch.testing.assert_close(nb[1], n)


def sphere_image(size=101, radius=40.0, level=4):
    c = (size - 1) / 2
    v, tri, unit = icosphere(level, radius, (c, c, 0.0))
    return v[None], tri, unit, c


def test_visibility_front_vs_back():
    v, tri, unit, c = sphere_image(level=3)
    fr = R.rasterize(v, tri, 101, 101)
    vis = R.vertex_visibility(v, fr.depth, fr.mask)
    front, back = unit[:, 2] > 0.2, unit[:, 2] < -0.05
    assert vis[0, front].all()
    assert not vis[0, back].any()
    # an ROI window: vertices outside it are not visible
    fr2 = R.rasterize(v, tri, roi=(0, 0, 101, 50))
    vis2 = R.vertex_visibility(v, fr2.depth, fr2.mask, fr2.x0, fr2.y0)
    assert not vis2[0, v[0, :, 0] > 50.5].any()
    assert vis2[0, front & (v[0, :, 0] < 49)].all()


def test_normal_map_of_sphere_is_radial():
    v, tri, unit, c = sphere_image()
    n, mask = R.render_normals(v, tri, 101, 101)
    yy, xx = torch.meshgrid(torch.arange(101, dtype=D), torch.arange(101, dtype=D), indexing="ij")
    px, py = (xx - c) / 40, (yy - c) / 40
    r2 = px ** 2 + py ** 2
    inner = (r2 < 0.9 ** 2) & mask[0]
    true = torch.stack([px, py, (1 - r2).clamp_min(0).sqrt()], -1)
    assert ((n[0] * true).sum(-1)[inner] > 0.999).all()
    assert (n[0][~mask[0]] == 0).all()
    # the winding does not matter with orient=True
    n2, _ = R.render_normals(v, tri.flip(1), 101, 101)
    torch.testing.assert_close(n2[0][inner], n[0][inner])  # (silhouette: n_z ~ 0)


# ---------------------------------------------------------------- SH shading

def test_sh_basis_orthonormal():
    k = torch.arange(20000, dtype=D) + 0.5  # Fibonacci sphere, near-uniform
    zc = 1 - 2 * k / 20000
    phi = math.pi * (1 + 5 ** 0.5) * k
    d = torch.stack([(1 - zc ** 2).sqrt() * phi.cos(), (1 - zc ** 2).sqrt() * phi.sin(), zc], -1)
    Y = R.sh_basis(d)
    gram = Y.T @ Y * (4 * math.pi / len(d))
    torch.testing.assert_close(gram, torch.eye(9, dtype=D), rtol=0, atol=2e-3)


def test_sh_ambient_gives_albedo():
    n = torch.nn.functional.normalize(torch.randn(1, 50, 3, dtype=D), dim=-1)
    alb = torch.rand(1, 50, 3, dtype=D)
    col = torch.tensor([[0.5, 1.0, 2.0]], dtype=D)
    torch.testing.assert_close(R.shade(n, alb, R.sh_ambient(col)), alb * col)


def _analytic_sh_irradiance(t):
    # E = sum_l A_l (2l+1)/(4 pi) P_l(t) for the SH projection of a unit directional light
    return 1 / 4 + t / 2 + (5 / 16) * (3 * t * t - 1) / 2


def test_sh_shading_sphere_vs_analytic_lambert():
    v, tri, unit, c = sphere_image()
    d = torch.tensor([[0.3, -0.5, 0.8]], dtype=D)
    d = d / d.norm()
    color = torch.tensor([[1.0, 0.5, 2.0]], dtype=D)
    sh = R.sh_directional(d, color)
    img, mask = R.render_shading(v, tri, sh, height=101, width=101)
    n, _ = R.render_normals(v, tri, 101, 101)
    t = (n[0] * d[0]).sum(-1)
    m = mask[0]
    # exact: the SH-convolved Lambertian (Funk-Hecke) at the rendered normals
    want = _analytic_sh_irradiance(t)[..., None] / math.pi * color[0]
    torch.testing.assert_close(img[0][m], want[m], rtol=0, atol=1e-12)
    # against the true clamped cosine at the exact sphere normals: the order-2 truncation
    # error bound plus a small mesh error
    ts = torch.linspace(-1, 1, 20001, dtype=D)
    bound = float((_analytic_sh_irradiance(ts) - ts.clamp_min(0)).abs().max())
    assert abs(bound - 3 / 32) < 1e-9  # at t = 0: 1/4 - 5/32
    yy, xx = torch.meshgrid(torch.arange(101, dtype=D), torch.arange(101, dtype=D), indexing="ij")
    px, py = (xx - c) / 40, (yy - c) / 40
    r2 = px ** 2 + py ** 2
    inner = (r2 < 0.95 ** 2) & m
    tn = torch.stack([px, py, (1 - r2).clamp_min(0).sqrt()], -1)
    lam = (tn * d[0]).sum(-1).clamp_min(0)
    err = (img[0, ..., 1] * math.pi / 0.5 - lam)[inner].abs()
    assert float(err.max()) < bound + 0.01
    # the lit region (n . d > 0.3): the relative error of the 9-term approximation is small
    lit = inner & (lam > 0.3)
    assert float((err[lit[inner]] / lam[lit]).max()) < 0.2
    assert float((err[lit[inner]] / lam[lit]).mean()) < 0.06
    # vertex (Gouraud) shading agrees with the per-pixel shading to mesh accuracy
    g, _ = R.render_shading(v, tri, sh, height=101, width=101, per_pixel=False)
    assert float((g - img)[0][inner].abs().max()) < 0.01


def test_sh_shading_gradients():
    v, tri, unit, c = sphere_image(size=41, radius=15.0, level=2)
    sh = R.sh_directional(torch.tensor([[0.0, 0.0, 1.0]], dtype=D)).requires_grad_()
    alb = torch.full((1, v.shape[1], 3), 0.7, dtype=D, requires_grad=True)
    img, _ = R.render_shading(v, tri, sh, alb, 41, 41)
    img.sum().backward()
    assert sh.grad.abs().sum() > 0 and alb.grad.abs().sum() > 0


# ---------------------------------------------------------------- ROI, texture

def test_roi_equals_crop_of_full_render():
    c = 150.0
    v, tri, unit = icosphere(3, 30.0, (c + 20.3, c - 10.7, 5.0))
    v = v.float()[None]
    ncc = ncc_code(v[0])
    sh = R.sh_directional(torch.tensor([[0.2, -0.3, 1.0]]))
    roi = R.face_roi(v, 300, 400)
    x0, y0, h, w = roi
    assert h < 80 and w < 80
    for fn, kw in [(R.render_depth, {}), (R.render_pncc, {"ncc": ncc}),
                   (R.render_normals, {}), (R.render_shading, {"sh_coeffs": sh}),
                   (R.render_albedo, {"albedo": ncc})]:
        full, fm = fn(v, tri, height=300, width=400, **kw)
        part, pm = fn(v, tri, roi=roi, **kw)
        assert torch.equal(part, full[:, y0:y0 + h, x0:x0 + w]), fn.__name__
        assert torch.equal(pm, fm[:, y0:y0 + h, x0:x0 + w])
        assert int(fm.sum()) == int(pm.sum())  # the box holds the whole face


def _quad(H, W):
    v = torch.tensor([[[-0.5, -0.5, 1.0], [W - 0.5, -0.5, 1.0], [W - 0.5, H - 0.5, 1.0],
                       [-0.5, H - 0.5, 1.0]]], dtype=D)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    return v, tri


def test_uv_texture_and_vertex_colors():
    H, W = 12, 16
    v, tri = _quad(H, W)
    uvs = torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], dtype=D)
    tex = torch.rand(1, 3, H, W, dtype=D, requires_grad=True)
    img, mask = R.render_rgb(v, tri, uvs=uvs, texture=tex, height=H, width=W)
    assert mask.all()
    # pixel centres land on texel centres: the texture comes back (v = 1 is the top row)
    torch.testing.assert_close(img[0], tex[0].permute(1, 2, 0), rtol=0, atol=1e-12)
    img.sum().backward()
    assert tex.grad is not None
    # separate uv topology (uv_triangles) gives the same
    uvs2 = torch.cat([torch.zeros(2, 2, dtype=D), uvs])
    img2, _ = R.render_rgb(v, tri, uvs=uvs2, uv_triangles=tri + 2, texture=tex.detach(),
                           height=H, width=W)
    torch.testing.assert_close(img2, img.detach())
    cols = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]], dtype=D)
    rgb, _ = R.render_rgb(v, tri, cols, H, W)
    torch.testing.assert_close(rgb[0, 0, 0], torch.tensor([1.0, 0, 0], dtype=D), atol=0.1, rtol=0)
    torch.testing.assert_close(rgb.sum(-1)[mask].min(), torch.tensor(1.0, dtype=D),
                               atol=0.01, rtol=0)
    lit, _ = R.render_rgb(v, tri, cols, H, W, sh_coeffs=R.sh_ambient(torch.ones(1, 3, dtype=D)))
    torch.testing.assert_close(lit, rgb)
    with pytest.raises(ValueError):
        R.render_rgb(v, tri, height=H, width=W)


# ---------------------------------------------------------------- overlay

def test_overlay_changes_only_masked_pixels():
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (40, 50, 3), generator=g, dtype=torch.uint8)
    ren = torch.rand(10, 12, 3, generator=g) * 255
    mask = torch.rand(10, 12, generator=g) > 0.5
    out = R.overlay(img, ren, mask, alpha=0.5, x0=45, y0=5)  # clipped at the right edge
    changed = torch.zeros(40, 50, dtype=torch.bool)
    changed[5:15, 45:50] = mask[:, :5]
    assert torch.equal(out[~changed], img[~changed])
    want = (0.5 * img[5:15, 45:50].double() + 0.5 * ren[:, :5].double()).round().to(torch.uint8)
    assert torch.equal(out[5:15, 45:50][mask[:, :5]], want[mask[:, :5]])
    f = R.overlay(img.float() / 255, ren / 255, mask, alpha=1.0)
    assert torch.equal(f[:10, :12][mask], (ren / 255)[mask])
    batch = R.overlay(img, torch.stack([ren, ren]), torch.stack([mask, ~mask]), 0.5, 45, 5)
    assert batch.shape == (2, 40, 50, 3) and torch.equal(batch[0], out)
    assert torch.equal(batch[1][changed], img[changed])


# ---------------------------------------------------------------- export

@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    v, tri, _ = icosphere(1)
    col = torch.rand(len(v), 3)
    p = R.write_ply(tmp_path / "m.ply", v, tri, col, binary=binary)
    back = R.read_ply(p)
    np.testing.assert_array_equal(back["vertices"], v.float().numpy())
    np.testing.assert_array_equal(back["triangles"], tri.numpy())
    np.testing.assert_array_equal(back["colors"], np.round(col.double().numpy() * 255))
    head = open(p, "rb").read(200)
    assert (b"binary_little_endian" in head) == binary
    back2 = R.read_ply(R.write_ply(tmp_path / "n.ply", v, tri, binary=binary))
    assert "colors" not in back2 and back2["triangles"].shape == (len(tri), 3)


def test_obj_round_trip(tmp_path):
    v, tri, unit = icosphere(1)
    col = torch.rand(len(v), 3, dtype=D)
    back = R.read_obj(R.write_obj(tmp_path / "c.obj", v, tri, colors=col))
    np.testing.assert_allclose(back["vertices"], v.numpy(), rtol=1e-8)
    np.testing.assert_allclose(back["colors"], col.numpy(), atol=1e-5)
    np.testing.assert_array_equal(back["triangles"], tri.numpy())
    assert back["uvs"] is None
    # UV texture: vt, usemtl, .mtl and the PNG
    uvs = torch.rand(len(v) + 3, 2, dtype=D)
    ut = (tri.long() + 3).int()
    tex = (torch.rand(8, 10, 3) * 255).to(torch.uint8)
    p = R.write_obj(tmp_path / "t.obj", v, tri, uvs=uvs, uv_triangles=ut, texture=tex,
                    normals=unit)
    text = open(p).read()
    assert "mtllib t.mtl" in text and "usemtl material0" in text
    back = R.read_obj(p)
    np.testing.assert_allclose(back["uvs"], uvs.numpy(), rtol=1e-8)
    np.testing.assert_array_equal(back["uv_triangles"], ut.numpy())
    np.testing.assert_array_equal(back["triangles"], tri.numpy())
    np.testing.assert_allclose(back["normals"], unit.numpy(), atol=1e-5)
    assert back["texture"] == str(tmp_path / "t.png")
    from PIL import Image
    np.testing.assert_array_equal(np.asarray(Image.open(back["texture"])), tex.numpy())


# ---------------------------------------------------------------- example image

def test_example_image_demo_head_under_sh(tmp_path):
    from pyface3d.demo import head_mesh
    vm, tri = head_mesh(60, 80)
    vm = torch.from_numpy(vm).double()
    S = 160
    s = S / 2.4
    # to image space: y flips, so the model's outward normals point inward -> orient=True
    vi = torch.stack([S / 2 + s * vm[:, 0], S / 2 - s * vm[:, 1], s * vm[:, 2]], 1)[None]
    tri = torch.from_numpy(tri)
    sh = math.pi * R.sh_directional(torch.tensor([[-0.4, -0.4, 0.8]], dtype=D)) + R.sh_ambient(
        torch.full((1, 3), 0.2, dtype=D))
    albedo = torch.tensor([0.8, 0.6, 0.5], dtype=D).expand(1, vi.shape[1], 3)
    roi = R.face_roi(vi, S, S)
    img, mask = R.render_shading(vi, tri, sh, albedo, roi=roi)
    bg = torch.full((S, S, 3), 0.1, dtype=D)
    out = R.overlay(bg, img[0].clamp(0, 1), mask[0], alpha=1.0, x0=roi[0], y0=roi[1])
    path = R.write_png(tmp_path / "head_sh.png", out)
    from PIL import Image
    a = np.asarray(Image.open(path)).astype(float)
    assert a.shape == (S, S, 3)
    assert a.std() > 20 and (a > 128).mean() > 0.05  # not blank
    face = a[np.asarray(mask[0]).nonzero()[0] + roi[1], np.asarray(mask[0]).nonzero()[1] + roi[0]]
    assert face.std() > 10  # shaded, not flat


# ---------------------------------------------------------------- nvdiffrast

def test_nvdiffrast_parity():
    from pyface3d.render import nvdiffrast as nvd
    if not torch.cuda.is_available():
        pytest.skip("nvdiffrast parity needs CUDA (not available)")
    if not nvd.available():
        pytest.skip("nvdiffrast is not installed")
    v, tri, unit, c = sphere_image(level=3)
    v = v.float().cuda()
    tri = tri.cuda()
    a = R.rasterize(v, tri, 101, 101, backend="compiled")
    b = R.rasterize(v, tri, 101, 101, backend="nvdiffrast")
    agree = (a.mask == b.mask).float().mean()
    assert agree > 0.995  # silhouette pixels may differ (coverage rules)
    both = a.mask & b.mask
    assert float((a.depth - b.depth)[both].abs().max()) < 1e-2
    ncc = ncc_code(v[0])
    pa, _ = R.render_pncc(v, tri, ncc, 101, 101, backend="compiled")
    pb, _ = R.render_pncc(v, tri, ncc, 101, 101, backend="nvdiffrast")
    assert float((pa - pb)[both].abs().max()) < 1e-3


def test_batch_and_float32():
    v, tri, unit, c = sphere_image(size=41, radius=15.0, level=2)
    vb = torch.cat([v, v + torch.tensor([3.0, -2.0, 1.0], dtype=D)]).float()
    sh = torch.stack([R.sh_directional(torch.tensor([[0.0, 0.0, 1.0]]))[0],
                      R.sh_directional(torch.tensor([[1.0, 0.0, 1.0]]))[0]])
    alb = torch.rand(1, v.shape[1], 3)
    for per_pixel in (True, False):
        both, m = R.render_shading(vb, tri, sh, alb, 41, 41, per_pixel=per_pixel)
        assert both.dtype == torch.float32 and both.shape == (2, 41, 41, 3)
        for b in range(2):
            one, m1 = R.render_shading(vb[b:b + 1], tri, sh[b:b + 1], alb, 41, 41,
                                       per_pixel=per_pixel)
            torch.testing.assert_close(both[b], one[0])
            assert torch.equal(m[b], m1[0])
        # one light for the whole batch
        shared, _ = R.render_shading(vb, tri, sh[:1], alb, 41, 41, per_pixel=per_pixel)
        one, _ = R.render_shading(vb[1:], tri, sh[:1], alb, 41, 41, per_pixel=per_pixel)
        torch.testing.assert_close(shared[1], one[0])


def test_backend_errors():
    v, tri, unit, c = sphere_image(size=21, radius=8.0, level=1)
    with pytest.raises(ValueError):
        R.rasterize(v, tri, 21, 21, backend="opengl")
    with pytest.raises(ValueError):
        R.render_depth(v, tri)  # no window
    with pytest.raises(RuntimeError):
        R.rasterize(v, tri, 21, 21, backend="nvdiffrast")  # CPU tensors / not installed
    a = R.rasterize(v, tri, 21, 21)  # auto on CPU: the compiled rasterizer
    b = R.rasterize(v, tri, 21, 21, backend="compiled")
    assert torch.equal(a.face_index, b.face_index) and torch.equal(a.depth, b.depth)
