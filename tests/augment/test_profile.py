"""Face profiling on a synthetic textured head (no shared data) and on the ICT model."""
import math

import cv2
import numpy as np
import pytest
import torch

from pyface3d.augment import (FaceProfiler, ProfileConfig, profile_face, yaw_rotation,
                              yaw_schedule)
from pyface3d.augment.mesh import ClosedMesh, boundary_loops, build_anchor_mesh
from pyface3d.augment.profile import landmark_visibility, mirror_map
from pyface3d.data import crop_to_image
from pyface3d.morphable import euler_angles, pose_from_euler
from pyface3d.render import render_depth
from tests.conftest import shared_dir

from .synth import make_params, render_scene


def _model_landmarks(model, params, roi):
    m = model.to("cpu", torch.float64)
    v = m.reconstruct(torch.as_tensor(params, dtype=torch.float64)[None], landmarks_only=True)
    return crop_to_image(v.numpy(), np.asarray(roi, np.float64)[None])[0]


# ----------------------------------------------------------------------------- schedule / rotation
def test_yaw_schedule_documented_orders():
    assert yaw_schedule(0.0, 11, 15, "outward") == [0, 15, 30, 45, 60, 75, 90, -15, -30, -45, -60]
    assert yaw_schedule(-20.0, 5, 15, "outward") == [0, -15, -30, -45, -60]
    assert yaw_schedule(-20.0, 7, 15, "symmetric") == [0, -15, 15, -30, 30, -45, 45]
    s = yaw_schedule(40.0, 11, 15, "outward")
    assert s[:4] == [0, 15, 30, 45] and s[4:] == [-15, -30, -45, -60, -75, -90, -105]
    assert all(abs(40 + d) <= 90 for d in s)
    with pytest.raises(ValueError, match="views"):
        yaw_schedule(0.0, 14, 15)
    with pytest.raises(ValueError, match="mode"):
        yaw_schedule(0.0, 3, 15, "sideways")
    with pytest.raises(ValueError, match="yaw_step"):
        yaw_schedule(0.0, 3, -15)


@pytest.mark.parametrize("yaw,pitch,roll,delta", [(10, 5, -4, 30), (-35, -12, 20, -40), (0, 0, 0, 75)])
def test_yaw_rotation_changes_only_the_euler_yaw(yaw, pitch, roll, delta):
    pose = pose_from_euler(torch.tensor([float(yaw)], dtype=torch.float64), pitch, roll, 2.0,
                           torch.zeros(3, dtype=torch.float64), degrees=True)
    Q = torch.from_numpy(yaw_rotation(delta, math.radians(roll)))
    assert torch.allclose(Q @ Q.T, torch.eye(3, dtype=torch.float64), atol=1e-12)
    new = pose.clone()
    new[0, :, :3] = Q @ pose[0, :, :3]
    y, p, r = (float(a) for a in euler_angles(new, degrees=True))
    assert y == pytest.approx(yaw + delta, abs=1e-9)
    assert p == pytest.approx(pitch, abs=1e-9) and r == pytest.approx(roll, abs=1e-9)


# ----------------------------------------------------------------------------- meshes
def test_boundary_loops_and_caps(synth_model):
    tri = synth_model.triangles.numpy()
    loops = boundary_loops(tri)
    assert len(loops) == 3  # outer rim + two eye holes
    mesh = ClosedMesh.from_triangles(tri, synth_model.N)
    assert len(mesh.caps) == 2 and np.array_equal(mesh.outer, loops[0])
    # closing the holes leaves only the outer rim open
    after = boundary_loops(mesh.triangles)
    assert len(after) == 1 and sorted(after[0].tolist()) == sorted(loops[0].tolist())
    v = mesh.extend(synth_model.mean.view(-1, 3).numpy())
    assert np.allclose(v[synth_model.N], v[loops[1]].mean(0))
    with pytest.raises(ValueError, match="triangle mesh"):
        ClosedMesh.from_triangles(np.zeros((0, 3)), 10)


def test_mirror_map_is_an_involution_on_a_symmetric_mesh(synth_model):
    mesh = ClosedMesh.from_triangles(synth_model.triangles.numpy(), synth_model.N)
    v = synth_model.mean.view(-1, 3).numpy()
    m = mirror_map(v, mesh.triangles[:synth_model.F], synth_model.landmarks68.numpy())
    ok = m >= 0
    assert ok.mean() > 0.99
    assert np.array_equal(m[m[ok]], np.flatnonzero(ok))
    assert np.allclose(v[m[ok], 0], -v[ok, 0], atol=1e-6)


def test_anchor_mesh_covers_the_image_around_the_face():
    H, W = 90, 120
    yy, xx = np.mgrid[0:H, 0:W]
    mask = ((xx - 60) / 25.0) ** 2 + ((yy - 45) / 30.0) ** 2 <= 1
    depth = np.where(mask, 50.0, 0.0)
    a = build_anchor_mesh(mask, depth, 50.0, background_depth=10.0, rings=(0.1, 0.3, 0.6),
                          hold=0.1, release=0.5, spacing=1 / 16, border_spacing=20,
                          depth_offset=0.01)
    assert set(np.unique(a.kind)) == {-1, 0, 1, 2, 3}
    assert np.all(a.weight[a.kind == 0] == 1) and np.all(a.weight[a.kind == -1] == 0)
    assert np.all(np.diff([a.weight[a.kind == k][0] for k in (1, 2, 3)]) <= 0)
    # depths: silhouette just behind the face, rings between it and the background
    assert np.allclose(a.points[a.kind == 0, 2], 50.0 - 0.5)
    assert np.all((a.points[a.kind > 0, 2] >= 10.0) & (a.points[a.kind > 0, 2] <= 49.5 + 1e-9))
    # every pixel outside the face is covered by an anchor triangle, none inside
    from pyface3d import ops
    fi, _, _ = ops.rasterize(torch.from_numpy(a.points)[None], torch.from_numpy(a.triangles), H, W)
    cov = (fi[0] >= 0).numpy()
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    outer = ~cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert cov[outer].all()
    assert not cov[inner].any()


# ----------------------------------------------------------------------------- profiling (synthetic)
def _views(prof, scene, deltas, **kw):
    img, p, roi, lm = scene
    return prof.profile(img, params=p, roi=roi, yaw_deltas=deltas, **kw)


def test_zero_view_reproduces_the_input(synth_profiler, synth_scene):
    img, p, roi, lm = synth_scene
    v = _views(synth_profiler, synth_scene, [0.0])[0]
    assert v.image.shape == img.shape and v.image.dtype == np.uint8
    assert not v.filled.any() and not v.mirrored.any()
    assert np.array_equal(v.image, img)
    assert np.allclose(v.landmarks, lm, atol=1e-6)
    assert v.yaw_delta == 0.0
    yaw0 = float(euler_angles(torch.from_numpy(p[:12].reshape(1, 3, 4)), degrees=True)[0])
    assert v.yaw == pytest.approx(yaw0, abs=1e-6)


def test_views_landmarks_are_the_models_projection(synth_profiler, synth_model, synth_scene):
    for v in _views(synth_profiler, synth_scene, [-45.0, 20.0, 60.0]):
        lm = _model_landmarks(synth_model, v.params, v.roi)
        assert np.allclose(v.landmarks, lm[:, :2], atol=1e-6)
        assert np.allclose(v.roi, __import__("pyface3d").data.roi_from_landmarks(v.landmarks))
        assert v.yaw == pytest.approx(10.0 + v.yaw_delta, abs=1e-6)
        assert v.pitch == pytest.approx(5.0, abs=1e-6) and v.roll == pytest.approx(-4.0, abs=1e-6)


def test_rotated_texture_matches_a_direct_rendering(synth_profiler, synth_model, synth_scene):
    """The view of the turned face equals the face rendered directly at the new pose
    (same per-vertex colours) wherever the point was visible in the input."""
    for d in (25.0, -25.0):
        v = _views(synth_profiler, synth_scene, [d])[0]
        # the textured part of the mesh (the default face_cut drops the rim)
        gt, mask, _, _ = render_scene(synth_model, v.params, v.roi, mesh=synth_profiler.mesh)
        ok = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        ok &= ~v.filled & ~v.mirrored
        assert ok.sum() > 0.5 * mask.sum()
        err = np.abs(v.image[ok].astype(float) - gt[ok].astype(float))
        assert err.mean() < 2.0 and np.percentile(err, 99) < 12, (d, err.mean())


def test_round_trip_plus_then_minus_theta(synth_profiler, synth_model, synth_scene):
    img, p, roi, lm = synth_scene
    theta = 30.0
    v1 = _views(synth_profiler, synth_scene, [theta])[0]
    # exact labels: rotate back with the view's parameters
    v2 = synth_profiler.profile(v1.image, params=v1.params, roi=v1.roi, yaw_deltas=[-theta])[0]
    assert np.allclose(v2.landmarks, lm, atol=1e-6)
    full = lambda q, r: crop_to_image(  # noqa: E731
        synth_model.to("cpu", torch.float64).reconstruct(torch.as_tensor(q)[None]).numpy(), r[None])[0]
    assert np.allclose(full(v2.params, v2.roi), full(p, roi), atol=1e-6)
    # the image comes back in the face region that stayed visible
    face = cv2.erode((render_scene(synth_model, p, roi)[1]).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    face &= ~v2.filled & ~v2.mirrored
    err = np.abs(v2.image[face].astype(float) - img[face].astype(float))
    assert err.mean() < 4.0, err.mean()
    # from the landmarks alone (fitted): close to the original labels
    v3 = synth_profiler.profile(v1.image, v1.landmarks, yaw_deltas=[-theta])[0]
    assert np.abs(v3.landmarks - lm).max() < 1.5
    assert np.linalg.norm(v3.landmarks - lm, axis=1).mean() < 0.5


def test_visibility_agrees_with_the_z_buffer(synth_profiler, synth_model, synth_scene):
    tol = synth_profiler.config.visibility_tol
    vs = _views(synth_profiler, synth_scene, [0.0, 50.0, -60.0])
    assert vs[0].visibility.all()
    for v in vs:
        m = synth_model.to("cpu", torch.float64)
        lm3 = crop_to_image(m.reconstruct(torch.as_tensor(v.params)[None], landmarks_only=True).numpy(),
                            v.roi[None])[0]
        scale = np.ptp(lm3[:, :2], 0).max()
        # the face's own Z-buffer (independent rendering of the whole closed model mesh)
        mesh = ClosedMesh.from_triangles(synth_model.triangles.numpy(), synth_model.N)
        vi = mesh.extend(crop_to_image(m.reconstruct(torch.as_tensor(v.params)[None]).numpy(), v.roi[None])[0])
        d, msk = render_depth(torch.from_numpy(vi)[None], torch.from_numpy(mesh.triangles), 160, 160)
        d, msk = d[0, ..., 0].numpy(), msk[0].numpy()
        assert np.array_equal(v.visibility, landmark_visibility(lm3, d, msk, tol * scale))
        # a hidden landmark has the face in front of it; the view's depth is the face's there
        xi, yi = np.round(lm3[:, 0]).astype(int), np.round(lm3[:, 1]).astype(int)
        hidden = ~v.visibility
        assert np.all(d[yi[hidden], xi[hidden]] > lm3[hidden, 2] + tol * scale)
        cut = synth_profiler.mesh
        vc = cut.extend(vi[:synth_model.N])
        dc, mc = render_depth(torch.from_numpy(vc)[None], torch.from_numpy(cut.triangles), 160, 160)
        mc = mc[0].numpy()
        assert np.allclose(v.depth[mc], dc[0, ..., 0].numpy()[mc], atol=1e-3)
    # turned by 60 degrees the far side of the jaw is hidden, the near side is not
    v60 = vs[2]
    far = v60.visibility[[0, 1, 2]] if v60.landmarks[0, 0] > v60.landmarks[16, 0] else v60.visibility[[14, 15, 16]]
    assert not far.all() and vs[1].visibility.sum() < 68


def test_no_holes_in_the_output(synth_profiler, synth_scene):
    for v in _views(synth_profiler, synth_scene, [-75.0, -30.0, 45.0, 80.0]):
        assert v.image.min() > 0  # the synthetic scene has no black pixel; holes would be 0
        assert v.filled.mean() < 0.2
        # every filled pixel was inpainted, not left at the fill value
        assert (v.image[v.filled] > 0).all()


def test_deterministic(synth_profiler, synth_scene):
    a = _views(synth_profiler, synth_scene, [35.0])[0]
    b = _views(synth_profiler, synth_scene, [35.0])[0]
    assert np.array_equal(a.image, b.image) and np.array_equal(a.params, b.params)


def test_fit_and_default_schedule(synth_model, synth_scene):
    img, p, roi, lm = synth_scene
    views = profile_face(img, lm, synth_model, views=4, yaw_step=20)
    assert [v.yaw_delta for v in views] == yaw_schedule(views[0].yaw, 4, 20)
    assert np.abs(views[0].landmarks - lm).max() < 1.0  # the fit reproduces the landmarks
    for v in views:
        assert v.params.shape == (synth_model.num_params,)
        assert v.visibility.dtype == bool and v.visibility.shape == (68,)


def test_grayscale_and_single_channel(synth_profiler, synth_scene):
    img, p, roi, lm = synth_scene
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    for x in (g, g[..., None]):
        v = synth_profiler.profile(x, params=p, roi=roi, yaw_deltas=[20.0])[0]
        assert v.image.shape == x.shape and v.image.min() > 0


def test_bad_inputs(synth_profiler, synth_scene):
    img, p, roi, lm = synth_scene
    with pytest.raises(ValueError, match="landmarks68.*68, 2"):
        synth_profiler.profile(img, lm[:67])
    with pytest.raises(ValueError, match="landmarks68.*68, 2"):
        synth_profiler.profile(img, np.zeros((68, 3)))
    with pytest.raises(ValueError, match="finite"):
        synth_profiler.profile(img, np.full((68, 2), np.nan))
    with pytest.raises(TypeError, match="uint8"):
        synth_profiler.profile(img.astype(np.float32), lm)
    with pytest.raises(TypeError, match="numpy"):
        synth_profiler.profile(img.tolist(), lm)
    with pytest.raises(ValueError, match="shape"):
        synth_profiler.profile(np.zeros((32, 32, 2), np.uint8), lm)
    with pytest.raises(ValueError, match="params"):
        synth_profiler.profile(img, params=p[:-1], roi=roi)
    with pytest.raises(ValueError, match="roi"):
        synth_profiler.profile(img, params=p)
    with pytest.raises(ValueError, match="landmarks68"):
        synth_profiler.profile(img)
    with pytest.raises(ValueError, match="yaw_deltas"):
        synth_profiler.profile(img, params=p, roi=roi, yaw_deltas=[float("nan")])
    with pytest.raises(ValueError, match="does not cover"):
        synth_profiler.profile(img, lm + 1000.0)
    with pytest.raises(ValueError, match="rings"):
        ProfileConfig(rings=(0.3, 0.1))
    with pytest.raises(ValueError, match="pivot"):
        ProfileConfig(pivot="nose")
    with pytest.raises(ValueError, match="no triangles"):
        from pyface3d.morphable import MorphableModel
        m = synth_profiler.model
        FaceProfiler(MorphableModel(m.mean, m.id_basis, m.exp_basis, np.zeros((0, 3), np.int32),
                                    m.landmarks68, m.param_mean, m.param_std))


@pytest.mark.parametrize("pivot", ["origin", "landmarks"])
def test_other_pivots_keep_labels_consistent(synth_model, synth_scene, pivot):
    prof = FaceProfiler(synth_model, ProfileConfig(pivot=pivot))
    v = _views(prof, synth_scene, [40.0])[0]
    assert np.allclose(v.landmarks, _model_landmarks(synth_model, v.params, v.roi)[:, :2], atol=1e-6)
    if pivot == "landmarks":  # the landmark centroid stays in place (up to depth)
        img, p, roi, lm = synth_scene
        c0 = _model_landmarks(synth_model, p, roi).mean(0)
        c1 = _model_landmarks(synth_model, v.params, v.roi).mean(0)
        assert np.allclose(c0[:2], c1[:2], atol=1e-6)


# ----------------------------------------------------------------------------- ICT model
@pytest.fixture(scope="module")
def ict():
    if not (shared_dir() / "assets" / "ict-facekit" / "ict_facekit_face_head.npz").is_file():
        pytest.skip("needs the shared ICT-FaceKit assets (PYFACE3D_SHARED)")
    from pyface3d.morphable import resolve
    return resolve("ict")


@pytest.mark.parametrize("face_cut", [(0.06, 0.1), None])
def test_ict_synthetic_face(ict, face_cut):
    prof = FaceProfiler(ict, ProfileConfig(face_cut=face_cut))
    n_tri = len(prof.mesh.triangles) - sum(len(c) for c in prof.mesh.caps)
    assert (n_tri < 0.8 * ict.F) if face_cut else (n_tri == ict.F)
    assert len(prof.mesh.caps) == 3  # eyes and mouth closed
    p = make_params(ict, yaw=-15.0, pitch=3.0, roll=5.0, scale=float(ict.param_mean[0]) * 0.95, coeff=0.5)
    p[11] = float(ict.param_mean[11])
    roi = np.array([0.0, 0.0, 200.0, 200.0])
    img, mask, _, vi = render_scene(ict, p, roi, 200, 200)
    lm = vi[ict.landmarks68.numpy(), :2]
    views = prof.profile(img, lm, views=3, yaw_step=30)
    assert [v.yaw_delta for v in views] == [0.0, -30.0, -60.0]
    assert views[0].visibility.sum() >= 60
    assert np.array_equal(views[0].image, img)
    for v in views:
        assert np.allclose(v.landmarks, _model_landmarks(ict, v.params, v.roi)[:, :2], atol=1e-4)
        assert v.image.min() > 0
    # the fit recovers the landmarks to a pixel
    assert np.linalg.norm(views[0].landmarks - lm, axis=1).mean() < 1.0
