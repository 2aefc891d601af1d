"""MediaPipe->68 map fitting and the fusion / rejection rule on synthetic data."""
import numpy as np
import pytest

from pyface3d.labels.fusion import Fusion, agreement, box_size, calibrate, nme_interocular
from pyface3d.labels.mapping import Mp68Map, fit_mapping, group_errors, load_map, similarity_align


def _faces(f=60, v=20, seed=0):
    """Random meshes: a base shape + per-face deformation, each under a random similarity."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-50, 50, (v, 2))
    mesh = base[None] + rng.normal(0, 6, (f, v, 2))
    out = np.empty_like(mesh)
    for i in range(f):
        a = rng.uniform(-0.5, 0.5)
        s = rng.uniform(0.5, 2.0)
        r = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out[i] = mesh[i] @ r.T + rng.uniform(50, 300, 2)
    return out


def _true_map(v, seed=1):
    rng = np.random.default_rng(seed)
    verts = np.stack([rng.choice(v, 3, replace=False) for _ in range(68)])
    w = rng.dirichlet(np.ones(3), 68)
    return Mp68Map(verts, w)


def test_fit_recovers_known_combination():
    mesh = _faces()
    true = _true_map(mesh.shape[1])
    pts = true(mesh)
    m = fit_mapping(mesh, pts, k=mesh.shape[1])      # all vertices are candidates
    assert np.abs(m(mesh) - pts).max() < 1e-4
    for j in range(68):                              # the same sparse weights come back
        dense_t = np.zeros(mesh.shape[1])
        np.add.at(dense_t, true.vertices[j], true.weights[j])
        dense_f = np.zeros(mesh.shape[1])
        np.add.at(dense_f, m.vertices[j], m.weights[j])
        assert np.abs(dense_t - dense_f).max() < 1e-4
    # weights are convex; the map is similarity-equivariant
    assert (m.weights >= 0).all() and np.allclose(m.weights.sum(1), 1)
    r = np.array([[0.0, -2.0], [2.0, 0.0]])
    assert np.allclose(m(mesh @ r.T + 5), m(mesh) @ r.T + 5)


def test_fit_picks_nearest_vertices_and_3d_input(tmp_path):
    mesh = _faces(v=40)
    pts = mesh[:, np.arange(68) % 40]                 # each point sits on one vertex
    m = fit_mapping(np.concatenate([mesh, np.zeros(mesh.shape[:2] + (1,))], -1), pts, k=3)
    assert (m.vertices[:, 0] == np.arange(68) % 40).all()
    assert np.allclose(m.weights[:, 0], 1, atol=1e-6)
    err = group_errors(m(mesh), pts, box_size(pts))
    assert err["all"] < 1e-4
    m.to_json(str(tmp_path / "map.json"))
    m2 = load_map(str(tmp_path / "map.json"))
    assert np.allclose(m2(mesh), m(mesh), atol=1e-3)


def test_similarity_align_exact():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(10, 2))
    r = 1.7 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    a, t = similarity_align(src, src @ r.T + [4, -2])
    assert np.allclose(a, r) and np.allclose(t, [4, -2])


def test_shipped_map_is_valid():
    m = load_map()
    assert m.vertices.shape[0] == 68 and m.vertices.max() < 468
    assert m.info["faces"] > 1000 and "300W train" in m.info["data"]


def test_map_bad_inputs():
    with pytest.raises(ValueError, match="sum to 1"):
        Mp68Map(np.zeros((68, 2), int), np.full((68, 2), 0.7))
    m = Mp68Map(np.zeros((68, 1), int) + 10, np.ones((68, 1)))
    with pytest.raises(ValueError, match="mesh"):
        m(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="pts68"):
        fit_mapping(np.zeros((3, 20, 2)), np.zeros((4, 68, 2)))
    with pytest.raises(ValueError, match="finite"):
        fit_mapping(np.full((3, 20, 2), np.nan), np.zeros((3, 68, 2)))
    with pytest.raises(FileNotFoundError, match="fit-map"):
        load_map("/nonexistent/map.json")


def _teachers(f=400, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 100, (f, 68, 2))
    gt[:, :, 0] += 100
    sa = np.where(np.arange(68) < 17, 4.0, 1.0)      # A: bad jaw
    sb = np.where(np.arange(68) < 17, 1.0, 2.0)      # B: good jaw
    a = gt + rng.normal(size=gt.shape) * sa[None, :, None]
    b = gt + rng.normal(size=gt.shape) * sb[None, :, None]
    return gt, a, b, sa, sb


def test_calibrate_inverse_variance_weights_and_threshold():
    gt, a, b, sa, sb = _teachers()
    fu = calibrate(a, b, gt, quantile=0.9)
    want = sb ** 2 / (sa ** 2 + sb ** 2)
    assert np.abs(fu.weight_a - want).max() < 0.06
    agr = agreement(a, b)
    assert fu.threshold == pytest.approx(np.quantile(agr, 0.9))
    fused, keep, agr2, reason = fu(a, b)
    assert keep.mean() == pytest.approx(0.9, abs=0.01)
    assert set(reason[~keep]) == {"disagree"}
    # fusion beats both teachers
    e = lambda p: np.sqrt(((p - gt) ** 2).sum(-1)).mean()
    assert e(fused) < min(e(a), e(b))
    assert np.allclose(Fusion.from_dict(fu.to_dict()).weight_a, fu.weight_a, atol=1e-6)


def test_fusion_rejects_missing_and_disagreeing():
    gt, a, b, _, _ = _teachers(f=6)
    a[1] = np.nan                                     # teacher A found nothing
    b[2] = np.nan
    b[3] += 40                                        # far off
    fu = Fusion(np.full(68, 0.25), threshold=0.1)
    fused, keep, agr, reason = fu(a, b)
    assert reason.tolist() == ["", "no_mb05", "no_mediapipe", "disagree", "", ""]
    assert keep.tolist() == [True, False, False, False, True, True]
    assert np.isnan(agr[1]) and np.isnan(fused[1]).all()
    assert np.allclose(fused[0], 0.25 * a[0] + 0.75 * b[0])
    # explicit found flags win over finiteness
    _, keep2, _, reason2 = fu(np.nan_to_num(a), np.nan_to_num(b), found_a=[1, 1, 1, 1, 0, 1],
                              found_b=[1] * 6)
    assert reason2[4] == "no_mb05" and not keep2[4]


def test_agreement_and_nme_values():
    gt = np.zeros((1, 68, 2))
    gt[0, :, 0] = np.linspace(0, 100, 68)
    gt[0, :, 1] = np.linspace(0, 50, 68)
    b = gt + [3.0, 4.0]                               # 5 px everywhere
    assert box_size(gt)[0] == pytest.approx(np.sqrt(100 * 50))
    assert agreement(gt, b)[0] == pytest.approx(5 / np.sqrt(100 * 50))
    io = np.linalg.norm(gt[0, 36] - gt[0, 45])
    assert nme_interocular(b, gt)[0] == pytest.approx(5 / io)


def test_fusion_bad_inputs():
    with pytest.raises(ValueError, match="weight_a"):
        Fusion(np.full(67, 0.5), 0.1)
    with pytest.raises(ValueError, match="threshold"):
        Fusion(np.full(68, 0.5), -1)
    with pytest.raises(ValueError, match="quantile"):
        calibrate(np.zeros((3, 68, 2)), np.zeros((3, 68, 2)), np.ones((3, 68, 2)), quantile=2)
    with pytest.raises(ValueError, match="`a` and `b`"):
        Fusion(np.full(68, 0.5), 0.1)(np.zeros((2, 68, 2)), np.zeros((3, 68, 2)))
