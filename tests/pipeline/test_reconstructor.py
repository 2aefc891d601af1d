import json

import cv2
import numpy as np
import pytest
import torch

from pyface3d.data.roi import crop_to_image, roi_from_box, roi_from_landmarks
from pyface3d.pipeline import FaceReconstructor, MorphableHead
from pyface3d.pipeline.detect import BoxesDetector

from .conftest import ConstBackend, lfpw_images


def _frame(h=480, w=640):
    return np.full((h, w, 3), 100, np.uint8)


def test_outputs_follow_from_the_parameters(toy_rec, toy_mm):
    res = toy_rec(_frame(), dense=True)
    assert len(res) == 1
    f = res.faces[0]
    roi = roi_from_box(np.array([200, 150, 320, 300.0]))
    np.testing.assert_allclose(f.roi, roi)
    p = toy_mm.param_mean.double().numpy()  # whitened 0 -> the mean
    np.testing.assert_allclose(f.params, p, rtol=1e-6, atol=1e-6)
    lm = crop_to_image(toy_mm.reconstruct(torch.from_numpy(p[None]).float(),
                                          landmarks_only=True).double().numpy(), roi[None])[0]
    np.testing.assert_allclose(f.landmarks, lm, atol=1e-3)
    np.testing.assert_allclose(f.vertices[toy_mm.landmarks68.numpy()], f.landmarks, atol=1e-3)
    assert f.pose.shape == (3,) and np.isfinite(f.pose).all()
    d = json.loads(res.to_json())
    assert d["image_size"] == {"height": 480, "width": 640}
    assert len(d["faces"][0]["landmarks"]) == 68 and set(d["faces"][0]["pose"]) == {
        "yaw", "pitch", "roll"}
    assert {"crop", "network", "reconstruct", "total"} <= set(d["timings_ms"])


def test_all_faces_of_a_frame_in_one_batch(toy_mm):
    be = ConstBackend(P=toy_mm.num_params)
    rec = FaceReconstructor(be, MorphableHead(toy_mm), detector=BoxesDetector(
        [[10, 10, 110, 130], [300, 50, 400, 170], [500, 300, 600, 420]]))
    res = rec(_frame())
    assert len(res) == 3 and be.batches == [3]
    out = rec.process_batch([_frame(), _frame(240, 320)])
    assert [len(r) for r in out] == [3, 3] and be.batches[-1] == 6
    # landmarks= : the ROI comes from previous landmarks (3DDFA_V2 rule)
    r2 = rec(_frame(), landmarks=res.faces[0].landmarks)
    np.testing.assert_allclose(r2.faces[0].roi, roi_from_landmarks(res.faces[0].landmarks[:, :2]))


def test_bad_network_output_is_reported(toy_mm):
    rec = FaceReconstructor(ConstBackend(P=toy_mm.num_params + 1), MorphableHead(toy_mm),
                            detector=BoxesDetector([[10, 10, 110, 130]]))
    with pytest.raises(ValueError, match="do not belong together"):
        rec(_frame())


def test_no_face_gives_an_empty_result(toy_mm):
    rec = FaceReconstructor(ConstBackend(P=toy_mm.num_params), MorphableHead(toy_mm),
                            detector=BoxesDetector())
    res = rec(_frame())
    assert len(res) == 0 and res.to_dict()["faces"] == []
    img, m = rec.render([], (48, 64), "depth")
    assert img.shape == (48, 64, 1) and not m.any()


def test_render_window_equals_the_full_frame_render(toy_rec):
    from pyface3d import render as R
    res = toy_rec(_frame(), dense=True)
    f = res.faces[0]
    for what in ("depth", "pncc", "normals"):
        full, m = toy_rec.render(res.faces, (480, 640), what)
        win, mw, x0, y0 = toy_rec.render_window(res.faces, (480, 640), what)
        assert m.sum() == mw.sum() > 100
        np.testing.assert_array_equal(full[y0:y0 + mw.shape[0], x0:x0 + mw.shape[1]], win)
    # depth equals a direct full-frame rasterization
    v = torch.from_numpy(f.vertices.astype(np.float32))[None]
    d, mask = R.render_depth(v, toy_rec.head.triangles, 480, 640)
    full, m = toy_rec.render(res.faces, (480, 640), "depth")
    np.testing.assert_array_equal(m, mask[0].numpy())
    np.testing.assert_allclose(full, d[0].numpy(), atol=1e-5)


def test_faces_are_composited_by_depth(toy_mm):
    rec = FaceReconstructor(ConstBackend(P=toy_mm.num_params), MorphableHead(toy_mm),
                            detector=BoxesDetector([[200, 150, 320, 300], [230, 150, 350, 300]]))
    res = rec(_frame(), dense=True)
    a, b = res.faces
    b.vertices = b.vertices.copy()
    b.vertices[:, 2] += 1000.0  # b in front of a everywhere
    d, m = rec.render(res.faces, (480, 640), "depth")
    db, mb = rec.render([b], (480, 640), "depth")
    np.testing.assert_array_equal(d[mb], db[mb])
    assert m.sum() > mb.sum()


def test_teacher_pipeline_is_accurate_on_300w(teacher_rec):
    from pyface3d.data import read_pts
    errs, errs_track = [], []
    for f in lfpw_images(8):
        img, gt = cv2.imread(f), read_pts(f[:-4] + ".pts") - 1
        r = teacher_rec(img)
        assert len(r) >= 1
        iod = np.linalg.norm(gt[36] - gt[45])
        errs.append(np.linalg.norm(r.faces[0].landmarks[:, :2] - gt, axis=1).mean() / iod)
        r2 = teacher_rec(img, landmarks=r.faces[0].landmarks)
        errs_track.append(np.linalg.norm(r2.faces[0].landmarks[:, :2] - gt, axis=1).mean() / iod)
    # mb05 on LFPW-test: ~6% of the inter-ocular distance from a YuNet box, ~5.5% re-cropped
    # from its own landmarks (measured 0.062 / 0.055 over 40 faces)
    assert np.mean(errs) < 0.08 and np.mean(errs_track) < 0.075
    with pytest.raises(ValueError, match="dense"):
        teacher_rec.render(r.faces, img.shape[:2], "depth")


def test_from_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="weights"):
        FaceReconstructor.from_weights(tmp_path / "missing.pt")


def test_onnxruntime_backend_matches_torch(toy_mm, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from pyface3d import models
    from pyface3d.deploy.backend import OnnxRuntimeBackend
    from pyface3d.pipeline.backends import TorchBackend
    from pyface3d.deploy.export import calibrate_batchnorm
    monkeypatch.setenv("PYFACE3D_CACHE", str(tmp_path))
    net = models.create("mobilenet_v1_x0.5", num_params=toy_mm.num_params, seed=0)
    calibrate_batchnorm(net)  # realistic activations (a fresh net outputs ~0)
    ort_be = OnnxRuntimeBackend(net, morphable=toy_mm, threads=1)
    assert ort_be.path.parent == tmp_path / "onnx" and ort_be.path.is_file()
    x = np.random.default_rng(0).standard_normal((3, 3, 120, 120)).astype(np.float32)
    a = TorchBackend(net, optimize=False)(x)
    b = ort_be(x)
    np.testing.assert_allclose(b, a, atol=1e-3 * (1 + np.abs(a).max()))
    # the export is cached: a second backend reuses the file
    mtime = ort_be.path.stat().st_mtime_ns
    assert OnnxRuntimeBackend(net, morphable=toy_mm).path.stat().st_mtime_ns == mtime
    rec = FaceReconstructor(ort_be, MorphableHead(toy_mm), detector=BoxesDetector([[10, 10, 110, 130]]))
    assert len(rec(_frame())) == 1


@pytest.mark.slow
def test_compile_backend_matches_eager(toy_mm):
    """torch.compile (inductor needs a C++ compiler; ~1 min on 2 cores)."""
    from pyface3d import models
    from pyface3d.deploy.export import calibrate_batchnorm
    from pyface3d.pipeline.backends import CompileBackend, TorchBackend
    net = calibrate_batchnorm(models.create("mobilenet_v1_x0.5", num_params=toy_mm.num_params,
                                            seed=0))
    x = np.random.default_rng(1).standard_normal((2, 3, 120, 120)).astype(np.float32)
    a = TorchBackend(net, optimize=False)(x)
    b = CompileBackend(net)(x)
    np.testing.assert_allclose(b, a, atol=1e-4 * (1 + np.abs(a).max()))
