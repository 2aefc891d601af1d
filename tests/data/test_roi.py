import math

import numpy as np
import pytest
import torch

from pyface3d.data import crop_image, crop_to_image, image_to_crop, roi_from_box, roi_from_landmarks


def test_roi_from_box_known():
    # w = h = 100 -> old = 100, centre (150, 150 + 14), side int(158) = 158
    roi = roi_from_box([100, 100, 200, 200])
    np.testing.assert_allclose(roi, [150 - 79, 164 - 79, 150 + 79, 164 + 79])
    # non-square box, side truncated like int(): old = (50 + 81) / 2 = 65.5 -> 103.49 -> 103
    roi = roi_from_box(np.array([[10, 20, 60, 101, 0.9]]))
    assert roi.shape == (1, 4)
    assert roi[0, 2] - roi[0, 0] == pytest.approx(103)
    np.testing.assert_allclose((roi[0, 0] + roi[0, 2]) / 2, 35)
    np.testing.assert_allclose((roi[0, 1] + roi[0, 3]) / 2, 60.5 + 0.14 * 65.5)


def test_roi_from_landmarks_known():
    pts = np.array([[10.0, 20.0], [50.0, 20.0], [30.0, 40.0]])  # box 40 x 20 -> square 40, centre (30, 30)
    roi = roi_from_landmarks(pts)
    side = 40 * math.sqrt(2)
    np.testing.assert_allclose(roi, [30 - side / 2, 30 - side / 2, 30 + side / 2, 30 + side / 2])
    # batched, NaN rows ignored, z ignored
    p3 = np.concatenate([pts, np.ones((3, 1))], 1)
    p3 = np.concatenate([p3, np.full((1, 3), np.nan)])
    np.testing.assert_allclose(roi_from_landmarks(np.stack([p3, p3])), np.stack([roi, roi]))
    r = roi_from_landmarks(pts, matlab_rounding=True)
    assert np.all(r == np.round(r))


@pytest.mark.parametrize("bad", [[0, 0, 0, 10], [5, 5, 1, 10], [0, 0, np.nan, 3], [1, 2, 3]])
def test_roi_bad_box(bad):
    with pytest.raises(ValueError, match="box"):
        roi_from_box(bad)


def test_roi_landmarks_bad():
    with pytest.raises(ValueError, match="pts"):
        roi_from_landmarks(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="pts"):
        roi_from_landmarks(np.full((5, 2), np.nan))


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_crop_image_round_trip(lib):
    rng = np.random.default_rng(0)
    pts = rng.uniform(-50, 200, (3, 68, 3))
    roi = np.array([[0, 0, 120, 120], [-30.5, 10.25, 210, 250.75], [40, 50, 70, 80]])
    if lib == "torch":
        pts_t, roi_t = torch.from_numpy(pts), torch.from_numpy(roi)
        back = crop_to_image(image_to_crop(pts_t, roi_t), roi_t)
        assert isinstance(back, torch.Tensor)
        back = back.numpy()
    else:
        back = crop_to_image(image_to_crop(pts, roi), roi)
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_crop_to_image_known():
    # identity-sized box: x -> x - 1, y -> 120 - y; z scaled by (x2 - x1) / 120
    pts = np.array([[[1.0, 120.0, 5.0], [61.0, 60.0, -2.0]]])
    out = crop_to_image(pts, np.array([[0, 0, 120, 120]]))
    np.testing.assert_allclose(out, [[[0, 0, 5], [60, 60, -2]]])
    out = crop_to_image(pts, np.array([[10, 20, 250, 140]]))  # sx = 2, sy = 1
    np.testing.assert_allclose(out, [[[10, 20, 10], [130, 80, -4]]])
    out2 = crop_to_image(pts[..., :2], np.array([[10, 20, 250, 140]]))
    np.testing.assert_allclose(out2, out[..., :2])


def test_crop_to_image_bad_shapes():
    with pytest.raises(ValueError, match="pts"):
        crop_to_image(np.zeros((68, 2)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="roi"):
        crop_to_image(np.zeros((2, 68, 2)), np.array([[0, 0, 1, 1]]))


@pytest.mark.parametrize("method", ["3ddfa_v2", "exact"])
def test_crop_image_padding(method):
    img = np.full((50, 80, 3), 200, np.uint8)
    # ROI half outside on the left and top: those parts are zero, not clipped away
    crop = crop_image(img, [-40, -25, 40, 55], size=120, method=method)
    assert crop.shape == (120, 120, 3) and crop.dtype == np.uint8
    assert crop[:50, :50].max() == 0            # outside -> 0
    assert crop[70:105, 70:].min() == 200        # inside the image
    assert crop[115:].max() == 0                 # below the image (rows 50..55) -> 0
    # a ROI fully outside gives a black crop
    assert crop_image(img, [500, 500, 600, 600], method=method).max() == 0
    # grey image
    assert crop_image(img[..., 0], [0, 0, 40, 40], size=20, method=method).shape == (20, 20)


def test_crop_image_exact_matches_map():
    # a single bright pixel must land where image_to_crop says
    img = np.zeros((200, 200), np.float32)
    img[77, 133] = 1.0
    roi = np.array([100.0, 50.0, 160.0, 110.0])  # 60 px -> 120: scale 0.5
    crop = crop_image(img, roi, 120, method="exact")  # bilinear: the peak is exact
    v, u = np.unravel_index(np.argmax(crop), crop.shape)
    uv = image_to_crop(np.array([[[133.0, 77.0]]]), roi[None])[0, 0]
    assert (u, v) == (uv[0] - 1, 120 - uv[1]) == (66, 54)
    assert crop[v, u] == pytest.approx(1.0)


def test_crop_image_3ddfa_matches_resize():
    import cv2
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    crop = crop_image(img, [10.2, 19.7, 70.4, 79.9])  # rounds to [10, 20, 70, 80]
    np.testing.assert_array_equal(crop, cv2.resize(img[20:80, 10:70], (120, 120)))


def test_crop_image_bad():
    with pytest.raises(ValueError, match="img"):
        crop_image(np.zeros((0, 3, 3), np.uint8), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="method"):
        crop_image(np.zeros((4, 4, 3), np.uint8), [0, 0, 3, 3], method="nope")
    with pytest.raises(ValueError, match="roi"):
        crop_image(np.zeros((4, 4, 3), np.uint8), [0, 0, -3, 3])
