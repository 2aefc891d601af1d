"""Fitting to labels (round trip), the per-source label writer and ImageLabelsDataset."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from pyface3d.data import ImageLabelsDataset
from pyface3d.data.roi import crop_to_image
from pyface3d.labels.build import build_source, write_json
from pyface3d.labels.fit import FitConfig, fit_labels
from pyface3d.labels.fusion import Fusion
from pyface3d.morphable import MorphableModel
from tests.standin import _make_standin, _rotation


def _model():
    s = _make_standin(n=120, i=8, e=4, seed=2)
    s.param_std[12:] = 1.0
    return MorphableModel(mean=s.mean * 30, id_basis=s.id_basis * 30, exp_basis=s.exp_basis * 30,
                          triangles=torch.tensor([[0, 1, 2]], dtype=torch.int32),
                          landmarks68=s.landmarks68, param_mean=s.param_mean,
                          param_std=s.param_std, name="standin")


def _faces(model, f=6, seed=0):
    """Image landmarks of random faces (crop-frame params mapped by a random square ROI)."""
    g = torch.Generator().manual_seed(seed)
    p = []
    for i in range(f):
        r = _rotation(0.4 * (i / f - 0.5), 0.1, -0.05)
        pose = torch.cat([r * 1.0, torch.tensor([[60.0], [60.0], [0.0]])], 1)
        c = torch.randn(model.param_mean.numel() - 12, generator=g, dtype=torch.float64) * 0.5
        p.append(torch.cat([pose.reshape(-1), c]))
    p = torch.stack(p).float()
    roi = np.array([[20 + 10 * i, 30.0, 20 + 10 * i + 160.0, 190.0] for i in range(f)])
    lm = crop_to_image(model.reconstruct(p, landmarks_only=True).double().numpy(), roi)[..., :2]
    return lm


def test_fit_round_trip():
    model = _model()
    lm = _faces(model)
    r = fit_labels(model, lm, FitConfig(prior_id=1e-6, prior_exp=1e-6, jaw_weight=0.5,
                                        batch=4))
    assert r.params.shape == (6, model.param_mean.numel()) and r.roi.shape == (6, 4)
    assert r.error.max() < 0.05, r.error              # pixels
    again = crop_to_image(model.reconstruct(torch.from_numpy(r.params).float(),
                                            landmarks_only=True).double().numpy(), r.roi)
    assert np.abs(again[..., :2] - r.landmarks).max() < 1e-3
    # a strong prior keeps the coefficients near the mean (plausible fits)
    strong = fit_labels(model, lm, FitConfig(prior_id=1e4, prior_exp=1e4))
    assert strong.z_rms.mean() < 0.2 < r.z_rms.mean()


def test_fit_bad_inputs():
    model = _model()
    with pytest.raises(ValueError, match="landmarks"):
        fit_labels(model, np.zeros((2, 67, 2)))
    with pytest.raises(ValueError, match="finite"):
        fit_labels(model, np.full((1, 68, 2), np.nan))
    with pytest.raises(ValueError, match="jaw_weight"):
        FitConfig(jaw_weight=-1)


def test_build_source_writes_dataset_labels(tmp_path):
    model = _model()
    lm = _faces(model, f=5)
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    paths = []
    for i in range(5):
        p = root / "sub" / f"f{i}.jpg"
        cv2.imwrite(str(p), np.full((240, 260, 3), 40 * i, np.uint8))
        paths.append(str(p))
    rng = np.random.default_rng(0)
    mb = lm + rng.normal(0, 0.3, lm.shape)
    mp = lm + rng.normal(0, 0.3, lm.shape)
    mp[3] += 30                                       # disagreeing teachers
    t = {"mb05": mb, "mp68": mp, "found_mb05": np.array([1, 1, 1, 1, 0], bool),
         "found_mp": np.ones(5, bool)}
    fu = Fusion(np.full(68, 0.5), threshold=0.05)
    out = tmp_path / "out"
    (out / "cache").mkdir(parents=True)
    cfg = FitConfig(prior_id=1e-3, prior_exp=1e-3)
    rep = build_source("demo", str(root), paths, t, fu, model, str(out), cfg)
    assert rep["kept"] == 3 and rep["reasons"] == {"disagree": 1, "no_mb05": 1}
    recs = json.load(open(out / "demo" / "labels.json"))
    rej = json.load(open(out / "demo" / "rejected.json"))
    assert [r["name"] for r in recs] == [os.path.join("sub", f"f{i}.jpg") for i in range(3)]
    assert {r["name"]: r["reason"] for r in rej["rejected"]} == {
        os.path.join("sub", "f3.jpg"): "disagree", os.path.join("sub", "f4.jpg"): "no_mb05"}
    ds = ImageLabelsDataset(str(root), str(out / "demo" / "labels.json"))
    assert len(ds) == 3
    item = ds[1]
    assert item["image"].shape == (3, 120, 120)
    # params reconstruct the fitted landmarks through the roi, and those are near the targets
    p = torch.tensor([r["params"] for r in recs])
    roi = np.array([r["roi"] for r in recs])
    rec = crop_to_image(model.reconstruct(p, landmarks_only=True).double().numpy(), roi)[..., :2]
    assert np.abs(rec - np.array([r["landmarks_fit"] for r in recs])).max() < 0.01
    assert np.abs(rec - np.array([r["landmarks"] for r in recs])).mean() < 1.0
    assert np.allclose(item["params"].numpy(), recs[1]["params"], atol=1e-5)
    # the fit is cached and reused; hand labels keep every face
    mtime = os.path.getmtime(out / "cache" / "demo_fit.npz")
    build_source("demo", str(root), paths, t, fu, model, str(out), cfg)
    assert os.path.getmtime(out / "cache" / "demo_fit.npz") == mtime
    rep2 = build_source("hand", str(root), paths, t, fu, model, str(out), cfg, gt=lm)
    assert rep2["kept"] == 5 and rep2["fit_error_px_mean"] < 0.5


def test_write_json_atomic(tmp_path):
    write_json(str(tmp_path / "a" / "x.json"), [1, 2])
    assert json.load(open(tmp_path / "a" / "x.json")) == [1, 2]
    assert os.listdir(tmp_path / "a") == ["x.json"]
