import numpy as np
import pytest
import torch

from pyface3d.data import (ColorJitter, Compose, Crop, CropJitter, GaussianBlur, HorizontalFlip, KeypointBases,
                           Occlusion, ParamFlipper, ToNetworkInput, flip_landmarks_model, normalize_image)
from tests.data._data_toy_model import _toy_bases


def _crop_sample(kb, rng):
    from scipy.spatial.transform import Rotation
    r = Rotation.from_euler("xyz", [0.1, 0.5, -0.1]).as_matrix() * 0.6
    params = np.concatenate([np.concatenate([r, [[60], [60], [0]]], 1).ravel(), rng.normal(size=50)])
    lm = kb.reconstruct(params)
    lm_pix = np.stack([lm[:, 0] - 1, 120 - lm[:, 1], lm[:, 2]], 1)
    img = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    return {"frame": "crop", "image": img, "landmarks": lm_pix, "params": params, "roi": np.array([0, 0, 120, 120.0]),
            "yaw": 30.0, "name": "x"}


def test_flip_twice_identity_and_consistent():
    kb = _toy_bases(zero_from=(40, 10))
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis)
    rng = np.random.default_rng(0)
    s = _crop_sample(kb, rng)
    f = HorizontalFlip(fl, p=1.0)
    s1 = f(s, rng)
    np.testing.assert_array_equal(s1["image"], s["image"][:, ::-1])
    assert s1["yaw"] == -30.0 and s1["flipped"]
    # flipped params reconstruct the flipped landmarks (exact for a symmetric model)
    t1 = ToNetworkInput()(s1)
    np.testing.assert_allclose(kb.reconstruct(s1["params"]), t1["landmarks"].double().numpy(), atol=1e-3)
    np.testing.assert_allclose(kb.reconstruct(s1["params"]), flip_landmarks_model(kb.reconstruct(s["params"])),
                               atol=1e-8)
    s2 = f(s1, rng)
    np.testing.assert_array_equal(s2["image"], s["image"])
    np.testing.assert_allclose(s2["landmarks"], s["landmarks"], atol=1e-12)
    np.testing.assert_allclose(s2["params"], s["params"], atol=1e-8)
    assert s2["yaw"] == 30.0 and not s2["flipped"]


def test_flip_needs_flipper_for_params():
    kb = _toy_bases()
    s = _crop_sample(kb, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ParamFlipper"):
        HorizontalFlip(None, p=1.0)(s, np.random.default_rng(0))
    s.pop("params")
    out = HorizontalFlip(None, p=1.0)(s, np.random.default_rng(0))
    assert out["flipped"]


def test_flipper_with_padded_zero_columns_is_involution():
    kb = _toy_bases()            # 3 of 40 identity and 2 of 10 expression columns used
    fl = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis)
    p = _crop_sample(kb, np.random.default_rng(1))["params"]
    np.testing.assert_allclose(fl(fl(p)), p, atol=1e-9)
    assert fl.residual(p) < 1e-8


def test_colour_blur_occlusion_seeded():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    s = {"frame": "crop", "image": img}
    t = Compose([ColorJitter(0.3, 0.3, 0.3), GaussianBlur(p=1.0), Occlusion(p=1.0, max_patches=3)])
    a = t(s, np.random.default_rng(5))
    b = t(s, np.random.default_rng(5))
    c = t(s, np.random.default_rng(6))
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], c["image"]) and not np.array_equal(a["image"], img)
    assert a["image"].dtype == np.uint8 and a["image"].shape == img.shape
    assert 1 <= len(a["occlusion_boxes"]) <= 3
    # the input is not modified in place
    np.testing.assert_array_equal(s["image"], np.random.default_rng(0).integers(0, 256, (120, 120, 3), dtype=np.uint8))


def test_occlusion_paints_box():
    img = np.zeros((120, 120, 3), np.uint8)
    for seed in range(5):
        out = Occlusion(size=(0.2, 0.2), max_patches=1, p=1.0)({"frame": "crop", "image": img}, np.random.default_rng(seed))
        x0, y0, x1, y1 = out["occlusion_boxes"][0]
        assert (x1 - x0, y1 - y0) == (24, 24)
        outside = out["image"].copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() == 0


def test_crop_jitter_and_crop():
    s = {"frame": "image", "image": np.zeros((300, 300, 3), np.uint8), "roi": np.array([100.0, 100, 200, 200]),
         "landmarks": np.array([[150.0, 150.0], [100.0, 200.0]])}
    for seed in range(20):
        out = CropJitter((0.8, 1.2), 0.1)(s, np.random.default_rng(seed))
        w = out["roi"][2] - out["roi"][0]
        assert 80 - 1e-9 <= w <= 120 + 1e-9
        assert abs((out["roi"][0] + out["roi"][2]) / 2 - 150) <= 10 + 1e-9
    c = Crop()(s)
    np.testing.assert_allclose(c["landmarks"], [[60, 60], [0, 120]])
    assert c["frame"] == "crop" and c["image"].shape == (120, 120, 3)
    with pytest.raises(ValueError, match="image-frame"):
        CropJitter()(c, np.random.default_rng(0))
    with pytest.raises(ValueError, match="crop-frame"):
        ColorJitter()(s, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [lambda: CropJitter((1.2, 0.8)), lambda: ColorJitter(brightness=1.5),
                                 lambda: GaussianBlur(p=2), lambda: Occlusion(max_patches=0),
                                 lambda: Occlusion(size=(0.5, 1.5))])
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_normalize_image():
    img = np.zeros((2, 2, 3), np.uint8)
    img[0, 0] = [255, 0, 128]
    t = normalize_image(img)
    assert t.shape == (3, 2, 2) and t.dtype == torch.float32
    assert t[:, 0, 0].tolist() == pytest.approx([127.5 / 128, -127.5 / 128, 0.5 / 128])


def test_flipper_from_model_like():
    from types import SimpleNamespace
    kb = _toy_bases(zero_from=(40, 10))
    # a dense "model" of 100 vertices whose landmark vertices are a shuffled subset
    rng = np.random.default_rng(0)
    ids = rng.permutation(100)[:68]
    mean = rng.normal(size=(100, 3))
    mean[ids] = kb.mean.reshape(68, 3)
    ib = rng.normal(size=(100, 3, 40))
    ib[ids] = kb.id_basis.reshape(68, 3, 40)
    eb = rng.normal(size=(100, 3, 10))
    eb[ids] = kb.exp_basis.reshape(68, 3, 10)
    model = SimpleNamespace(mean=torch.from_numpy(mean.ravel()).float(), id_basis=torch.from_numpy(ib.reshape(300, 40)),
                            exp_basis=torch.from_numpy(eb.reshape(300, 10)), landmarks68=torch.from_numpy(ids))
    fl = ParamFlipper.from_model(model)
    p = _crop_sample(kb, rng)["params"]
    ref = ParamFlipper(kb.mean, kb.id_basis, kb.exp_basis)
    np.testing.assert_allclose(fl(p), ref(p), rtol=1e-4, atol=1e-4)
    assert fl.residual(p) < 1e-3     # float32 mean
