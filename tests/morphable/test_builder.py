import math

import numpy as np
import pytest
import torch

from pyface3d.morphable import MorphableModel, build_ict_model, euler_angles
from pyface3d.morphable.builder import PosePrior, main, pca_basis

from tests.conftest import shared_dir
from ._synth import ict_like_npz

ICT = shared_dir() / "assets" / "ict-facekit"
ICT_NPZ = ICT / "ict_facekit_face_head.npz"
FAST = PosePrior(samples=20_000)


@pytest.fixture
def synth(tmp_path):
    path = tmp_path / "ict_like.npz"
    return path, ict_like_npz(path, n_id=12, n_exp=8)


def _deltas(d, key, lo, hi):
    a = d[key][:, lo:hi].astype(np.float64)
    return a.reshape(a.shape[0], -1)          # (n, 3K) interleaved


def test_full_rank_reproduces_covariance(synth):
    path, d = synth
    m = build_ict_model(path, n_id=12, n_exp=8, region="face_head", unit="cm",
                        pose_prior=FAST, progress=False)
    V = d["vertices_neutral"].shape[0]
    assert m.N == V and (m.I, m.E) == (12, 8)
    np.testing.assert_allclose(m.mean.numpy(), d["vertices_neutral"].reshape(-1))
    D = _deltas(d, "identity_deltas", 0, V)
    B = m.id_basis.double().numpy()
    # a_id ~ N(0, 1) reproduces ICT's identity covariance D^T D
    np.testing.assert_allclose(B @ B.T, D.T @ D, atol=1e-4 * np.abs(D.T @ D).max())
    De = _deltas(d, "expression_deltas", 0, V)
    Be = m.exp_basis.double().numpy()
    np.testing.assert_allclose(Be @ Be.T, De.T @ De / 8, atol=1e-4 * np.abs(De.T @ De).max())
    # every ICT mode is exactly representable
    coef, *_ = np.linalg.lstsq(B, D.T, rcond=None)
    np.testing.assert_allclose(B @ coef, D.T, atol=1e-4)


def test_orthogonality_explained_signs(synth):
    path, d = synth
    m = build_ict_model(path, n_id=5, n_exp=3, region="face", unit="mm", pose_prior=FAST,
                        progress=False)
    for basis, key, n, scale in ((m.id_basis, "identity_deltas", 5, 10.0),
                                 (m.exp_basis, "expression_deltas", 3, 10.0 / math.sqrt(8))):
        B = basis.double().numpy()
        G = B.T @ B
        off = G - np.diag(np.diag(G))
        assert np.abs(off).max() < 1e-5 * np.diag(G).max()
        assert np.all(np.diff(np.diag(G)) <= 1e-9)          # descending variance
        D = _deltas(d, key, 0, 40)
        s = np.linalg.svd(D, compute_uv=False)
        np.testing.assert_allclose(np.sqrt(np.diag(G)), s[:n] * scale, rtol=1e-5)
        meta = m.metadata["identity" if key.startswith("id") else "expression"]
        np.testing.assert_allclose(meta["explained_variance"], (s[:n] ** 2).sum() / (s ** 2).sum(),
                                   rtol=1e-6)
        # sign convention: the largest-magnitude entry of each column is positive
        idx = np.argmax(np.abs(B), axis=0)
        assert np.all(B[idx, np.arange(n)] > 0)


def test_region_remap_and_uvs(synth):
    path, d = synth
    m = build_ict_model(path, n_id=4, n_exp=2, region="face", pose_prior=FAST, progress=False)
    nf = int(d["region_face"][1])
    assert m.N == nf
    assert int(m.triangles.max()) < nf
    np.testing.assert_array_equal(m.landmarks68.numpy(), d["landmarks68"])
    # triangles: every triangulated polygon lying inside the region, nothing else
    from pyface3d.morphable import triangulate
    t = triangulate(d["faces"])
    expect = t[(t < nf).all(1)]
    np.testing.assert_array_equal(m.triangles.numpy(), expect)
    assert m.metadata["triangles_kept"] == expect.shape[0]
    assert m.uvs.shape[0] == int(np.unique(triangulate(d["faces_uv"])[(t < nf).all(1)]).size)
    np.testing.assert_allclose(m.uvs[m.uv_triangles].numpy(),
                               d["uvs"][triangulate(d["faces_uv"])[(t < nf).all(1)]])
    np.testing.assert_allclose(m.mean.numpy(), d["vertices_neutral"][:nf].reshape(-1) * 1e4)
    with pytest.raises(ValueError, match="outside region"):
        build_ict_model(path, region="face_narrow", n_id=2, n_exp=2, pose_prior=FAST,
                        progress=False)
    with pytest.raises(ValueError, match="region"):
        build_ict_model(path, region="ears", progress=False)
    with pytest.raises(ValueError, match="unit"):
        build_ict_model(path, unit="inch", progress=False)
    with pytest.raises(ValueError, match="exceed"):
        build_ict_model(path, n_id=13, n_exp=2, progress=False)


def test_determinism_and_roundtrip(synth, tmp_path):
    path, _ = synth
    out1, out2 = tmp_path / "a.npz", tmp_path / "b.npz"
    m1 = build_ict_model(path, out1, n_id=6, n_exp=4, pose_prior=FAST, progress=False)
    m2 = build_ict_model(path, out2, n_id=6, n_exp=4, pose_prior=FAST, progress=False)
    assert m1.sha256() == m2.sha256()
    l1 = MorphableModel.load(out1, expected_sha256=m1.sha256())
    assert l1.metadata == m1.metadata and l1.name == "ict-facekit-face-id6-exp4-um"
    for f in ("mean", "id_basis", "exp_basis", "triangles", "landmarks68", "param_mean",
              "param_std", "uvs", "uv_triangles"):
        assert torch.equal(getattr(l1, f), getattr(m1, f)), f
    assert main([str(path), str(tmp_path / "c.npz"), "--n-id", "6", "--n-exp", "4"]) == 0


def test_pose_statistics(synth):
    path, _ = synth
    m = build_ict_model(path, n_id=2, n_exp=2, pose_prior=FAST, progress=False)
    pm, ps = m.param_mean, m.param_std
    assert torch.all(ps[:12] > 0) and torch.all(torch.isfinite(ps))
    assert torch.equal(pm[12:], torch.zeros(4)) and torch.equal(ps[12:], torch.ones(4))
    f0 = m.metadata["whitening"]["frontal_scale_f0"]
    lm = m.mean.reshape(-1, 3)[m.landmarks68]
    width = float(lm[:, 0].max() - lm[:, 0].min())
    assert f0 == pytest.approx(84.0 / width, rel=1e-6)
    # E[f R11] = E[f] E[cos(pitch)] E[cos(roll)] = f0 e^{0.1^2/2} e^{-s^2/2} e^{-s^2/2}, s = 15 deg
    s = math.radians(15)
    assert float(pm[5]) == pytest.approx(f0 * math.exp(0.1 ** 2 / 2) * math.exp(-s ** 2), rel=0.02)
    # E[f R00] = E[f] E[cos(yaw)] E[cos(roll)], yaw ~ U(-90, 90) deg: E[cos] = 2 / pi
    assert float(pm[0]) == pytest.approx(
        f0 * math.exp(0.1 ** 2 / 2) * 2 / math.pi * math.exp(-s ** 2 / 2), rel=0.02)


def test_pca_basis_errors():
    with pytest.raises(ValueError, match="k"):
        pca_basis(np.ones((3, 9)), 4)
    with pytest.raises(ValueError, match="nonzero"):
        pca_basis(np.ones((3, 9)), 2)        # rank 1
    r = pca_basis(np.zeros((3, 9)), 0)
    assert r["basis"].shape == (9, 0)


@pytest.mark.skipif(not ICT_NPZ.is_file(), reason="ict_facekit_face_head.npz not in "
                    "PYFACE3D_SHARED")
def test_build_from_shared_npz(tmp_path):
    out = tmp_path / "ict.npz"
    m = build_ict_model(ICT_NPZ, out, progress=False)
    assert (m.N, m.I, m.E, m.num_params) == (9409, 40, 10, 62)
    assert m.F == 18461
    assert m.metadata["identity"]["explained_variance"] > 0.97
    assert m.metadata["expression"]["explained_variance"] > 0.9
    with np.load(ICT_NPZ) as z:
        np.testing.assert_array_equal(m.landmarks68.numpy(), z["landmarks68"])
        neutral = z["vertices_neutral"][:9409]
    np.testing.assert_allclose(m.mean.numpy().reshape(-1, 3), neutral * 1e4, rtol=1e-6)
    assert MorphableModel.load(out).sha256() == m.sha256()
    # frame: x to the image right, y up, z to the viewer; iBUG order of the landmarks
    lm0 = m.mean.reshape(-1, 3)[m.landmarks68]
    assert lm0[0, 0] < 0 < lm0[16, 0]                  # jaw starts on the image left
    assert lm0[8, 1] < lm0[33, 1] < lm0[27, 1]         # chin below nose tip below nose bridge
    assert lm0[30, 2] > lm0[0, 2]                      # nose tip towards the viewer
    # the mean pose puts the face in the 120x120 crop, frontal-ish on average
    p = m.param_mean[None].clone()
    lm = m.reconstruct(p, landmarks_only=True)[0]
    assert 20 < float(lm[:, 0].min()) and float(lm[:, 0].max()) < 100
    assert 20 < float(lm[:, 1].min()) and float(lm[:, 1].max()) < 100
    yaw, pitch, roll = euler_angles(p[:, :12].reshape(1, 3, 4), degrees=True)
    assert abs(float(yaw)) < 10 and abs(float(pitch)) < 10 and abs(float(roll)) < 10
    # a standard-normal identity moves vertices by millimetres, not centimetres (um units)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(8, 40, generator=g)
    disp = (m.vertices(a) - m.vertices()).norm(dim=-1).mean()
    assert 2e3 < float(disp) < 2e4                  # 2-20 mm


@pytest.mark.skipif(not (ICT / "raw_sample" / "identity000.obj").is_file(),
                    reason="ICT-FaceKit raw sample not in PYFACE3D_SHARED")
def test_build_from_obj_folder():
    m = build_ict_model(ICT / "raw_sample", n_id=1, n_exp=1, region="face", unit="cm",
                        expressions=["jawOpen"], pose_prior=FAST, progress=False)
    assert (m.N, m.I, m.E) == (9409, 1, 1)
    # one mode: the basis is that mode (sign-fixed), scaled by 1 (id) and 1/sqrt(1) (exp)
    from pyface3d.morphable.ict import read_obj_vertices
    raw = ICT / "raw_sample"
    n = read_obj_vertices(raw / "generic_neutral_mesh.obj")[:9409]
    for basis, f in ((m.id_basis, "identity000.obj"), (m.exp_basis, "jawOpen.obj")):
        delta = (read_obj_vertices(raw / f)[:9409] - n).reshape(-1)
        b = basis[:, 0].double().numpy()
        sign = np.sign(delta[np.argmax(np.abs(delta))])
        np.testing.assert_allclose(b, sign * delta, atol=1e-5)
