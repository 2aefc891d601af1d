import hashlib
import os

import cv2
import numpy as np
import pytest

from pyface3d.pipeline import assets
from pyface3d.pipeline.detect import (BoxesDetector, HaarDetector, YuNetDetector, check_image,
                                      make_detector)
from tests.conftest import shared_dir

from .conftest import lfpw_images


def _yunet():
    p = shared_dir() / "assets" / "detectors" / "yunet_n_320_320.onnx"
    if not p.is_file():
        pytest.skip("needs the YuNet model (PYFACE3D_SHARED)")
    return p


def _face_and_gt():
    from pyface3d.data import read_pts
    f = lfpw_images(1)[0]
    return cv2.imread(f), read_pts(f[:-4] + ".pts") - 1


def _covers(box, pts):
    cx, cy = pts[:, 0].mean(), pts[:, 1].mean()
    return box[0] < cx < box[2] and box[1] < cy < box[3]


def test_yunet_finds_the_face_and_downscaling_maps_boxes_back():
    img, gt = _face_and_gt()
    full = YuNetDetector(_yunet(), max_size=None).detect(img)
    small = YuNetDetector(_yunet(), max_size=160).detect(img)
    assert full.shape[1] == 5 and len(full) >= 1 and _covers(full[0], gt)
    assert len(small) >= 1 and _covers(small[0], gt)
    side = full[0, 2] - full[0, 0]
    assert np.abs(small[0, :4] - full[0, :4]).max() < 0.15 * side
    assert np.all(np.diff(full[:, 4]) <= 0)  # sorted by score


def test_haar_finds_a_frontal_face():
    img, gt = _face_and_gt()
    b = HaarDetector().detect(img)
    assert len(b) >= 1 and any(_covers(x, gt) for x in b)
    assert np.all((b[:, 4] > 0) & (b[:, 4] < 1))


def test_detectors_return_empty_on_a_blank_image():
    blank = np.full((240, 320, 3), 127, np.uint8)
    assert HaarDetector().detect(blank).shape == (0, 5)
    assert YuNetDetector(_yunet()).detect(blank).shape == (0, 5)


def test_boxes_detector_and_validation():
    d = BoxesDetector([[1, 2, 30, 40]])
    np.testing.assert_array_equal(d.detect(np.zeros((50, 50, 3), np.uint8)),
                                  [[1, 2, 30, 40, 1]])
    with pytest.raises(ValueError, match="boxes"):
        BoxesDetector([[10, 10, 5, 20]])
    with pytest.raises(ValueError, match="boxes"):
        BoxesDetector([[1, 2, 3]])
    with pytest.raises(ValueError, match="non-finite"):
        BoxesDetector([[1, 2, np.nan, 4]])


def test_make_detector_specs(monkeypatch, tmp_path):
    assert isinstance(make_detector([[0, 0, 10, 10]]), BoxesDetector)
    assert isinstance(make_detector("haar"), HaarDetector)
    with pytest.raises(ValueError, match="detector"):
        make_detector("nope")
    # auto without YuNet anywhere falls back to Haar
    monkeypatch.setattr(assets, "find_asset", lambda key, required=True: None)
    import pyface3d.pipeline.detect as det
    monkeypatch.setattr(det, "find_asset", lambda key, required=True: None)
    assert isinstance(make_detector("auto"), HaarDetector)


def test_check_image_conversions_and_errors():
    g = np.zeros((10, 12), np.uint8)
    assert check_image(g).shape == (10, 12, 3)
    assert check_image(np.zeros((10, 12, 4), np.uint8)).shape == (10, 12, 3)
    with pytest.raises(TypeError, match="uint8"):
        check_image(np.zeros((10, 12, 3), np.float32))
    with pytest.raises(TypeError, match="numpy"):
        check_image([[1, 2]])
    with pytest.raises(ValueError, match="shape"):
        check_image(np.zeros((10, 12, 2), np.uint8))


def test_find_asset_order_and_message(monkeypatch, tmp_path):
    monkeypatch.setenv("PYFACE3D_SHARED", str(tmp_path / "none"))
    monkeypatch.setenv("PYFACE3D_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PYFACE3D_ASSETS", raising=False)
    shipped = assets.find_asset("yunet", required=False)
    assert shipped is not None  # the package ships YuNet
    monkeypatch.setattr(assets, "_package_dir", lambda: tmp_path / "pkg")
    assert assets.find_asset("yunet", required=False) is None
    with pytest.raises(FileNotFoundError, match="PYFACE3D_ASSETS"):
        assets.find_asset("yunet")
    d = tmp_path / "mine"
    d.mkdir()
    (d / assets.ASSETS["yunet"].name).write_bytes(b"x")
    monkeypatch.setenv("PYFACE3D_ASSETS", str(d))
    assert assets.find_asset("yunet") == d / assets.ASSETS["yunet"].name
    with pytest.raises(KeyError):
        assets.find_asset("nope")


def test_download_checks_the_sha256(monkeypatch, tmp_path):
    src = tmp_path / "src.onnx"
    src.write_bytes(b"not yunet")
    with pytest.raises(ValueError, match="sha256"):
        assets.download_asset("yunet", tmp_path / "dl", url=src.as_uri())
    assert not any((tmp_path / "dl").iterdir())  # nothing unverified kept
    good = assets.Asset("f.bin", hashlib.sha256(b"not yunet").hexdigest(), src.as_uri(), "x",
                        "x")
    monkeypatch.setitem(assets.ASSETS, "test", good)
    out = assets.download_asset("test", tmp_path / "dl")
    assert out.read_bytes() == b"not yunet" and os.listdir(tmp_path / "dl") == ["f.bin"]
