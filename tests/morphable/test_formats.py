import os
import pickle

import numpy as np
import pytest
import scipy.io
import torch

from pyface3d.morphable import (load_3ddfa_bfm, load_3ddfa_param_mean_std,
                                load_bfm2009, load_ict_facekit, read_obj, triangulate)
from pyface3d.morphable._safe_pickle import safe_load_pickle
from pyface3d.morphable.bfm import keypoints_to_landmarks

from tests.conftest import shared_dir

ICT = shared_dir() / "assets" / "ict-facekit"
TEACHER = shared_dir() / "assets" / "teachers" / "3ddfa_v2_mb05"


# ----------------------------------------------------------------------------- 3DDFA pickle
def _bfm_dict(N=50, K=199, Ke=29, F=60, seed=0, tri_rows=True):
    rng = np.random.default_rng(seed)
    lm = rng.choice(N, 68)
    kp = (3 * lm[:, None] + np.arange(3)[None]).reshape(-1)
    tri = rng.integers(0, N, (F, 3))
    return {
        "u": rng.normal(size=(3 * N, 1)).astype(np.float32) * 1e4,
        "w_shp": rng.normal(size=(3 * N, K)).astype(np.float32),
        "w_exp": rng.normal(size=(3 * N, Ke)).astype(np.float32),
        "tri": tri.T if tri_rows else tri,
        "keypoints": kp.astype(np.int64),
        "w_tex": np.zeros((3, 2)),
    }, lm, tri


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_3ddfa_pkl(tmp_path, protocol):
    d, lm, tri = _bfm_dict()
    path = tmp_path / "bfm_noneck_v3.pkl"
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=protocol)
    m = load_3ddfa_bfm(path)
    assert (m.N, m.I, m.E, m.F) == (50, 40, 10, 60)
    np.testing.assert_array_equal(m.mean.numpy(), d["u"][:, 0])
    np.testing.assert_array_equal(m.id_basis.numpy(), d["w_shp"][:, :40])
    np.testing.assert_array_equal(m.exp_basis.numpy(), d["w_exp"][:, :10])
    np.testing.assert_array_equal(m.triangles.numpy(), tri)
    np.testing.assert_array_equal(m.landmarks68.numpy(), lm)
    assert m.metadata["ignored_keys"] == ["w_tex"]
    assert torch.equal(m.param_std, torch.ones(62)) and torch.equal(m.param_mean, torch.zeros(62))
    assert m.name == "bfm_noneck_v3"


def test_3ddfa_pkl_options(tmp_path):
    d, lm, tri = _bfm_dict(K=40, Ke=10, tri_rows=False)
    d["tri"] = tri + 1                             # (F, 3), 1-based: detected
    d["tri"][0] = [1, 2, 50]                       # make sure max == N
    path = tmp_path / "bfm.pkl"
    path.write_bytes(pickle.dumps(d))
    rng = np.random.default_rng(1)
    stats = {"mean": rng.normal(size=62).astype(np.float32),
             "std": rng.uniform(0.5, 1, size=62).astype(np.float32)}
    spath = tmp_path / "param_mean_std_62d_120x120.pkl"
    spath.write_bytes(pickle.dumps(stats))
    m = load_3ddfa_bfm(path, param_mean_std=spath)
    np.testing.assert_array_equal(m.triangles.numpy()[0], [0, 1, 49])
    np.testing.assert_array_equal(m.param_mean.numpy(), stats["mean"])
    np.testing.assert_array_equal(m.param_std.numpy(), stats["std"])
    # separate tri.pkl (3DDFA_V2 configs/tri.pkl), 0-based (3, F)
    tpath = tmp_path / "tri.pkl"
    tpath.write_bytes(pickle.dumps(tri.T.copy()))
    m2 = load_3ddfa_bfm(path, tri=tpath, n_id=5, n_exp=3)
    np.testing.assert_array_equal(m2.triangles.numpy(), tri)
    assert (m2.I, m2.E) == (5, 3)
    with pytest.raises(ValueError, match="param_mean_std"):
        load_3ddfa_bfm(path, param_mean_std=(np.zeros(10), np.ones(10)))
    with pytest.raises(ValueError, match="components requested"):
        load_3ddfa_bfm(path, n_id=41)
    bad = dict(d)
    bad.pop("keypoints")
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="keypoints"):
        load_3ddfa_bfm(tmp_path / "bad.pkl")
    bad = dict(d, w_shp=d["w_shp"][:-3])
    (tmp_path / "bad2.pkl").write_bytes(pickle.dumps(bad))
    with pytest.raises(ValueError, match="w_shp"):
        load_3ddfa_bfm(tmp_path / "bad2.pkl")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="dict"):
        load_3ddfa_bfm(tmp_path / "list.pkl")


def test_keypoints_to_landmarks():
    lm = np.arange(68) * 2
    kp = (3 * lm[:, None] + np.arange(3)).reshape(-1)
    np.testing.assert_array_equal(keypoints_to_landmarks(kp), lm)
    np.testing.assert_array_equal(keypoints_to_landmarks(kp.reshape(1, -1).astype(float)), lm)
    with pytest.raises(ValueError, match="interleaved"):
        keypoints_to_landmarks(kp[::-1])
    with pytest.raises(ValueError, match="204"):
        keypoints_to_landmarks(kp[:-3])
    with pytest.raises(IndexError, match="keypoints"):
        keypoints_to_landmarks(kp, N=100)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    d, _, _ = _bfm_dict()
    d["u"] = _Evil(marker)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        load_3ddfa_bfm(path)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match="eval"):
        safe_load_pickle(pickle.dumps({"mean": _EvalEvil()}, protocol=protocol))
    (tmp_path / "evil_stats.pkl").write_bytes(pickle.dumps({"mean": _Evil(marker), "std": 1}))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        load_3ddfa_param_mean_std(tmp_path / "evil_stats.pkl")
    assert not marker.exists()


class _Plain:
    pass


def test_pickle_of_custom_class_refused():
    with pytest.raises(pickle.UnpicklingError, match="_Plain"):
        safe_load_pickle(pickle.dumps({"u": np.zeros(3), "x": [_Plain()]}))


@pytest.mark.skipif(not (TEACHER / "param_mean_std_62d_120x120.pkl").is_file(),
                    reason="3DDFA_V2 teacher assets not in PYFACE3D_SHARED")
def test_real_3ddfa_param_mean_std():
    m, s = load_3ddfa_param_mean_std(TEACHER / "param_mean_std_62d_120x120.pkl")
    assert m.shape == (62,) and s.shape == (62,) and (s > 0).all()
    np.testing.assert_allclose(m, np.loadtxt(TEACHER / "param_mean_v2.txt"), rtol=1e-6)
    np.testing.assert_allclose(s, np.loadtxt(TEACHER / "param_std_v2.txt"), rtol=1e-6)


# ----------------------------------------------------------------------------- BFM2009 .mat
def _bfm2009(tmp_path, N=30, K=12, F=40, seed=0):
    rng = np.random.default_rng(seed)
    d = {"shapeMU": rng.normal(size=(3 * N, 1)) * 1e4, "shapePC": rng.normal(size=(3 * N, K)),
         "shapeEV": rng.uniform(1e3, 1e4, size=(K, 1)),
         "tl": rng.integers(1, N + 1, (F, 3)).astype(np.float64)}
    d["tl"][0] = [1, 2, N]
    scipy.io.savemat(tmp_path / "01_MorphableModel.mat", d)
    return d


def test_bfm2009(tmp_path):
    d = _bfm2009(tmp_path)
    rng = np.random.default_rng(5)
    lm = rng.choice(30, 68)
    m = load_bfm2009(tmp_path / "01_MorphableModel.mat", landmarks68=lm, n_id=8, n_exp=0)
    np.testing.assert_allclose(m.mean.numpy(), d["shapeMU"][:, 0].astype(np.float32))
    np.testing.assert_allclose(m.id_basis.numpy(),
                               (d["shapePC"][:, :8] * d["shapeEV"][:8, 0]).astype(np.float32))
    np.testing.assert_array_equal(m.triangles.numpy(), d["tl"].astype(int) - 1)
    assert m.E == 0 and m.num_params == 20
    raw = load_bfm2009(tmp_path / "01_MorphableModel.mat", landmarks68=lm, n_id=8, n_exp=0,
                       scale_by_std=False)
    np.testing.assert_allclose(raw.id_basis.numpy(), d["shapePC"][:, :8].astype(np.float32))
    # 3DDFA-style expression: w_exp + mu_exp
    w_exp = rng.normal(size=(90, 29))
    mu_exp = rng.normal(size=(90, 1))
    scipy.io.savemat(tmp_path / "Model_Expression.mat", {"w_exp": w_exp, "mu_exp": mu_exp})
    m2 = load_bfm2009(tmp_path / "01_MorphableModel.mat", tmp_path / "Model_Expression.mat",
                      landmarks68=lm, n_id=12)
    assert (m2.I, m2.E) == (12, 10)
    np.testing.assert_allclose(m2.exp_basis.numpy(), w_exp[:, :10].astype(np.float32))
    np.testing.assert_allclose(m2.mean.numpy(), (d["shapeMU"] + mu_exp)[:, 0].astype(np.float32),
                               rtol=1e-6)
    # exp_pc / exp_ev
    exp_pc, exp_ev = rng.normal(size=(90, 6)), rng.uniform(1, 2, size=(6, 1))
    scipy.io.savemat(tmp_path / "exp.mat", {"exp_pc": exp_pc, "exp_ev": exp_ev})
    m3 = load_bfm2009(tmp_path / "01_MorphableModel.mat", tmp_path / "exp.mat",
                      landmarks68=lm, n_id=4, n_exp=6)
    np.testing.assert_allclose(m3.exp_basis.numpy(), (exp_pc * exp_ev[:, 0]).astype(np.float32),
                               rtol=1e-6)


def test_bfm2009_defaults_and_errors(tmp_path):
    _bfm2009(tmp_path, K=45)
    lm = np.arange(68) % 30
    path = tmp_path / "01_MorphableModel.mat"
    with pytest.raises(ValueError, match="n_exp"):
        load_bfm2009(path, landmarks68=lm)               # default n_exp = 10, no expression
    m = load_bfm2009(path, landmarks68=lm, n_exp=0)
    assert m.I == 40
    with pytest.raises(ValueError, match="landmarks68"):
        load_bfm2009(path, n_exp=0)
    scipy.io.savemat(tmp_path / "e.mat", {"foo": np.zeros(3)})
    with pytest.raises(ValueError, match="w_exp"):
        load_bfm2009(path, tmp_path / "e.mat", landmarks68=lm)
    scipy.io.savemat(tmp_path / "bad.mat", {"shapeMU": np.zeros((90, 1))})
    with pytest.raises(ValueError, match="shapePC"):
        load_bfm2009(tmp_path / "bad.mat", landmarks68=lm, n_exp=0)


def test_bfm2009_trim_index(tmp_path):
    d = _bfm2009(tmp_path, N=30)
    rng = np.random.default_rng(7)
    keep = np.sort(rng.choice(30, 25, replace=False))   # 0-based
    w_exp = rng.normal(size=(75, 10))
    scipy.io.savemat(tmp_path / "Model_Expression.mat", {"w_exp": w_exp})
    lm = np.arange(68) % 25
    path = tmp_path / "01_MorphableModel.mat"
    with pytest.raises(ValueError, match="trim_index"):
        load_bfm2009(path, tmp_path / "Model_Expression.mat", landmarks68=lm, n_id=4)
    scipy.io.savemat(tmp_path / "model_info.mat", {"trimIndex": (keep + 1)[:, None]})
    m = load_bfm2009(path, tmp_path / "Model_Expression.mat", landmarks68=lm, n_id=4,
                     trim_index=tmp_path / "model_info.mat")
    rows = (3 * keep[:, None] + np.arange(3)).reshape(-1)
    assert m.N == 25
    np.testing.assert_allclose(m.mean.numpy(), d["shapeMU"][rows, 0].astype(np.float32))
    np.testing.assert_allclose(m.exp_basis.numpy(), w_exp.astype(np.float32))
    # triangles: those inside the kept set, remapped
    lut = -np.ones(30, int)
    lut[keep] = np.arange(25)
    t = lut[d["tl"].astype(int) - 1]
    np.testing.assert_array_equal(m.triangles.numpy(), t[(t >= 0).all(1)])
    assert "dropped" in m.metadata["trim"]


# ----------------------------------------------------------------------------- OBJ / ICT
def test_read_obj(tmp_path):
    text = """# comment
mtllib x.mtl
v 0 0 0
v 1 0 0
v 1 1 0 1.0
v 0 1 0 0.5 0.5 0.5
v 2 0 0
vt 0 0
vt 1 0
vt 1 1
vt 0 1
vn 0 0 1
g group
f 1/1/1 2/2/1 3/3/1 4/4/1
f -4/-4 5/2 -3/3
"""
    p = tmp_path / "m.obj"
    p.write_text(text)
    o = read_obj(p)
    assert o["vertices"].shape == (5, 3) and o["uvs"].shape == (4, 2)
    np.testing.assert_array_equal(o["faces"], [[0, 1, 2, 3], [1, 4, 2, -1]])
    np.testing.assert_array_equal(o["faces_uv"], [[0, 1, 2, 3], [0, 1, 2, -1]])
    np.testing.assert_array_equal(triangulate(o["faces"]), [[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    p.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\n")
    o = read_obj(p)
    assert o["faces_uv"] is None and o["faces"].tolist() == [[0, 1, 2, -1]]
    for bad, match in [("v 0 0 0\nf 1 2 3 4 5\n", "corners"), ("v 0 0\n", "coordinates"),
                       ("v 0 0 0\nv 0 0 0\nv 0 0 0\nf 0 1 2\n", "index 0"),
                       ("v 0 0 0\nv 0 0 0\nv 0 0 0\nvt 0 0\nf 1/1 2/1 3\n", "texture")]:
        p.write_text(bad)
        with pytest.raises(ValueError, match=match):
            read_obj(p)
    p.write_text("v 0 0 0\nv 0 0 0\nv 0 0 0\nf 1 2 4\n")
    with pytest.raises(IndexError, match="outside"):
        read_obj(p)


def test_triangulate_errors():
    with pytest.raises(ValueError, match="faces"):
        triangulate(np.zeros((3, 5), np.int32))
    with pytest.raises(ValueError, match="-1"):
        triangulate(np.array([[0, -1, 2, 3]]))


@pytest.mark.skipif(not (ICT / "raw_sample" / "generic_neutral_mesh.obj").is_file(),
                    reason="ICT-FaceKit raw sample not in PYFACE3D_SHARED")
def test_ict_obj_folder_matches_npz():
    raw = ICT / "raw_sample"
    o = read_obj(raw / "generic_neutral_mesh.obj")
    assert o["vertices"].shape == (26719, 3) and o["faces"].shape == (26384, 4)
    assert o["uvs"].shape == (28911, 2) and (o["faces"][:, 3] == -1).sum() == 548
    a = load_ict_facekit(raw, expressions=["jawOpen"], progress=False)
    assert a["identity_deltas"].shape == (1, 11248, 3)
    assert list(a["identity_names"]) == ["identity000"]
    if not (ICT / "ict_facekit_face_head.npz").is_file():
        pytest.skip("ict_facekit_face_head.npz not present")
    b = load_ict_facekit(ICT / "ict_facekit_face_head.npz")
    for k in ("vertices_neutral", "faces", "uvs", "faces_uv", "landmarks68",
              "fitting_vertices", "rigid_vertices", "region_face", "region_face_narrow",
              "region_head_neck"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_allclose(a["identity_deltas"][0], b["identity_deltas"][0], atol=1e-6)
    j = list(b["expression_names"]).index("jawOpen")
    np.testing.assert_allclose(a["expression_deltas"][0], b["expression_deltas"][j], atol=1e-6)
    with pytest.raises(FileNotFoundError, match="browDown_L"):
        load_ict_facekit(raw, progress=False)     # the sample lacks the other expressions


def test_ict_npz_validation(tmp_path):
    from ._synth import ict_like_npz
    d = ict_like_npz(tmp_path / "ok.npz")
    out = load_ict_facekit(tmp_path / "ok.npz")
    assert out["identity_deltas"].shape == d["identity_deltas"].shape
    bad = dict(d)
    bad.pop("landmarks68")
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="landmarks68"):
        load_ict_facekit(tmp_path / "bad.npz")
    bad = dict(d, identity_deltas=d["identity_deltas"][:, :-1])
    np.savez(tmp_path / "bad2.npz", **bad)
    with pytest.raises(ValueError, match="identity_deltas"):
        load_ict_facekit(tmp_path / "bad2.npz")
    with pytest.raises(FileNotFoundError):
        load_ict_facekit(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="folder"):
        load_ict_facekit(tmp_path / "ok.npz", expressions=["a"])
