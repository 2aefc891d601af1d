import numpy as np
import pytest
import scipy.io as sio

from tests.conftest import shared_dir
from pyface3d.data import (IBUG68_FLIP, KeypointBases, ParamFlipper, angles_to_matrix_300wlp, crop_to_image,
                           flip_landmarks_model, flip_landmarks_pixels, image_affine_to_params,
                           load_3ddfa_keypoint_bases, params_from_300wlp, params_to_image_affine,
                           pose_para_to_image_affine, roi_from_landmarks)

TEACHER = shared_dir() / "assets" / "teachers" / "3ddfa_v2_mb05"
FIXTURE = shared_dir() / "data" / "fixtures" / "300w_lp" / "IBUG_image_008_1_0"
needs_shared = pytest.mark.skipif(not (TEACHER / "u_base.txt").is_file() or not FIXTURE.with_suffix(".mat").is_file(),
                                  reason="needs ../shared (PYFACE3D_SHARED): teacher bases and the 300W-LP fixture")


def test_flip_permutation():
    p = IBUG68_FLIP
    assert sorted(p.tolist()) == list(range(68))
    np.testing.assert_array_equal(p[p], np.arange(68))                     # involution
    np.testing.assert_array_equal(p[36:42], [45, 44, 43, 42, 47, 46])       # right eye -> left eye
    np.testing.assert_array_equal(p[42:48], [39, 38, 37, 36, 41, 40])
    assert p[0] == 16 and p[8] == 8 and p[17] == 26 and p[21] == 22
    assert p[31] == 35 and p[33] == 33 and p[48] == 54 and p[51] == 51 and p[57] == 57
    assert p[60] == 64 and p[62] == 62 and p[66] == 66 and p[65] == 67
    np.testing.assert_array_equal(p[27:31], [27, 28, 29, 30])


def test_flip_landmarks_real_face():
    pts_path = shared_dir() / "data" / "fixtures" / "300w" / "image_0010.pts"
    if not pts_path.is_file():
        pytest.skip("needs ../shared (300W fixture)")
    from pyface3d.data import read_pts
    pts = read_pts(pts_path) - 1
    f = flip_landmarks_pixels(pts, 1000)
    # the subject's right eye is on the image left before and after the flip
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()
    assert f[36:42, 0].mean() < f[42:48, 0].mean()
    assert f[0, 0] < f[16, 0]
    np.testing.assert_allclose(flip_landmarks_pixels(f, 1000), pts)


def test_rotation_matrix():
    r = angles_to_matrix_300wlp(0.3, -0.7, 0.2)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1)
    # pure yaw: R = [[c, 0, -s], [0, 1, 0], [s, 0, c]] -> asin(R[2, 0]) = yaw (3DDFA_V2 matrix2angle)
    r = angles_to_matrix_300wlp(0, 0.5, 0)
    assert np.arcsin(r[2, 0]) == pytest.approx(0.5)


def test_affine_params_round_trip():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3, 4))
    roi = np.array([[0, 0, 120, 120], [-10, 5, 200, 215], [3, 4, 50, 60], [100, 100, 400, 400]], float)
    p = image_affine_to_params(a, roi)
    np.testing.assert_allclose(params_to_image_affine(p, roi), a, atol=1e-12)
    # consistent with crop_to_image applied to the posed points
    s = rng.normal(size=(10, 3))
    model = np.einsum("bij,kj->bki", p.reshape(-1, 3, 4)[:, :, :3], s) + p.reshape(-1, 3, 4)[:, None, :, 3]
    img = np.einsum("bij,kj->bki", a[:, :, :3], s) + a[:, None, :, 3]
    np.testing.assert_allclose(crop_to_image(model, roi), img, atol=1e-9)


def test_pose_para_image_frame():
    # identity rotation, f = 2, t = (11, 21, 3), H = 100: x = 2 X + 10, y = 100 - (2 Y + 21)
    a = pose_para_to_image_affine([0, 0, 0, 11, 21, 3, 2], 100)
    np.testing.assert_allclose(a, [[2, 0, 0, 10], [0, -2, 0, 79], [0, 0, 2, 3]])
    with pytest.raises(ValueError, match="pose_para"):
        pose_para_to_image_affine([0, 0, 0], 100)


@needs_shared
def test_300wlp_fixture_reconstructs_pt2d():
    import cv2
    kb = load_3ddfa_keypoint_bases(TEACHER)
    mat = sio.loadmat(FIXTURE.with_suffix(".mat"))
    h = cv2.imread(str(FIXTURE.with_suffix(".jpg"))).shape[0]
    pt = mat["pt2d"].T - 1.0
    roi = roi_from_landmarks(pt)
    p = params_from_300wlp(mat, h, roi)
    assert p.shape == (62,)
    img = crop_to_image(kb.reconstruct(p)[None], roi[None])[0]
    err = np.linalg.norm(img[:, :2] - pt, axis=1)
    # inner points (17..67): the fit reproduces them (face ~250 px); the contour of this 44-degree
    # profile is annotated on the 2D silhouette, not on the 3D model's jaw vertices
    assert err[17:].mean() < 5.0 and err[17:].max() < 15.0, err
    assert err[:17].mean() < 30.0
    # the same points directly from Pose_Para (no crop round trip)
    a = pose_para_to_image_affine(mat["Pose_Para"], h)
    s = (kb.mean + kb.id_basis @ p[12:52] + kb.exp_basis @ p[52:]).reshape(-1, 3)
    np.testing.assert_allclose(s @ a[:, :3].T + a[:, 3], img, atol=1e-6)


def _symmetric_bases(rng, k_pairs=30, k_mid=8, n_id=6, n_exp=4):
    """A random point model symmetric about x = c (pairs + midline points), bases built from
    symmetric and antisymmetric deformations so an exact coefficient mirror exists."""
    k = 2 * k_pairs + k_mid
    perm = np.arange(k)
    perm[:k_pairs], perm[k_pairs:2 * k_pairs] = np.arange(k_pairs, 2 * k_pairs), np.arange(k_pairs)
    c = 3.0
    half = rng.normal(size=(k_pairs, 3))
    mid = rng.normal(size=(k_mid, 3))
    mid[:, 0] = 0
    mean = np.concatenate([half, half * [-1, 1, 1], mid]) + [c, 0, 0]

    def deform(sign):
        h = rng.normal(size=(k_pairs, 3))
        m = rng.normal(size=(k_mid, 3))
        m[:, 0] = 0 if sign > 0 else m[:, 0]
        if sign < 0:
            m[:, 1:] = 0
        return np.concatenate([h, sign * h * [-1, 1, 1], m]).ravel()

    ib = np.stack([deform(1 if j % 2 else -1) for j in range(n_id)], 1)
    eb = np.stack([deform(1 if j % 2 else -1) for j in range(n_exp)], 1)
    return KeypointBases(mean.ravel(), ib, eb), perm


def _random_params(rng, n_id, n_exp, b=5):
    from scipy.spatial.transform import Rotation
    r = Rotation.random(b, random_state=1).as_matrix() * rng.uniform(0.5, 2, (b, 1, 1))
    t = rng.normal(size=(b, 3, 1)) * 20 + 60
    return np.concatenate([np.concatenate([r, t], 2).reshape(b, 12), rng.normal(size=(b, n_id + n_exp))], 1)


@pytest.mark.parametrize("involutive", [True, False])
def test_param_flip_symmetric_basis_exact(involutive):
    rng = np.random.default_rng(3)
    kb, perm = _symmetric_bases(rng)
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis, perm=perm, involutive=involutive)
    p = _random_params(rng, 6, 4)
    f = fl(p)
    np.testing.assert_allclose(kb.reconstruct(f), flip_landmarks_model(kb.reconstruct(p), 120, perm), atol=1e-8)
    np.testing.assert_allclose(fl(f), p, atol=1e-8)            # twice = identity
    assert fl.residual(p) < 1e-8


@needs_shared
def test_param_flip_teacher_bases():
    import cv2
    kb = load_3ddfa_keypoint_bases(TEACHER)
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis)
    mat = sio.loadmat(FIXTURE.with_suffix(".mat"))
    pt = mat["pt2d"].T - 1.0
    p = params_from_300wlp(mat, cv2.imread(str(FIXTURE.with_suffix(".jpg"))).shape[0], roi_from_landmarks(pt))
    f = fl(p)
    # BFM is nearly symmetric: the flipped params give the mirrored landmarks to < 1 crop pixel
    d = np.linalg.norm(kb.reconstruct(f) - flip_landmarks_model(kb.reconstruct(p)), axis=1)
    assert d.max() < 1.0 and d.mean() < 0.5, d
    assert fl.residual(p) == pytest.approx(d.max())
    # the pose part is exact: rotation rows/cols negated, scale kept
    a, a2 = p[:12].reshape(3, 4)[:, :3], f[:12].reshape(3, 4)[:, :3]
    np.testing.assert_allclose(a2, a * np.array([[1, -1, -1], [-1, 1, 1], [-1, 1, 1]]))
    np.testing.assert_allclose(fl(f), p, rtol=1e-6, atol=1e-6 * np.abs(p).max())   # exact involution


def test_param_flipper_bad_input():
    rng = np.random.default_rng(0)
    kb, perm = _symmetric_bases(rng)
    with pytest.raises(ValueError, match="perm"):
        ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis, perm=np.zeros(len(perm), int))
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis, perm=perm)
    with pytest.raises(ValueError, match="params"):
        fl(np.zeros(7))
