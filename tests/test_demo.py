import os

import numpy as np

from pyface3d.demo import head_landmarks68, head_mesh, run_demo


def test_head_mesh_is_closed_and_landmarks_on_front():
    v, t = head_mesh(40, 60)
    assert v.shape == (40 * 60, 3) and t.shape[1] == 3
    assert t.min() >= 0 and t.max() < len(v)
    lm = head_landmarks68()
    assert lm.shape == (68, 3)
    assert (lm[:, 2] > 0).all()  # all landmarks on the visible (front) side when frontal


def test_demo_writes_images(tmp_path):
    import cv2

    timings = run_demo(str(tmp_path), size=128)
    for name in ("depth", "pncc", "landmarks", "heatmaps"):
        img = cv2.imread(os.path.join(tmp_path, f"{name}.png"))
        assert img is not None and img.shape == (128, 128 * 5, 3)
        assert img.std() > 5  # not blank
    # the face covers a good part of each frame and heatmaps decode back to the points
    assert timings["roundtrip_error_px"] < 0.1
    depth = cv2.imread(os.path.join(tmp_path, "depth.png"))
    assert (depth.sum(-1) > 0).mean() > 0.2
    assert np.isfinite(list(timings.values())).all()
