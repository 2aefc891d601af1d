"""Tests of pyface3d.metrics: NME variants, yaw buckets, table layout, AFLW protocols, CED."""
import math

import numpy as np
import pytest
import torch

from pyface3d.metrics import (AFLW21_FROM_68, accuracy, aflw2000_nme, aflw21_from_68,
                              aflw21_visibility, aflw_dev_nme, auc, bucket_by_yaw, ced_curve,
                              failure_rate, format_yaw_table, nme, normalizer, plot_ced)
from tests.conftest import shared_dir


def _face68(b=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(10, 110, size=(b, 68, 2))


def test_nme_constant_offset_box():
    gt = _face68()
    off = np.array([3.0, 4.0])                      # |offset| = 5
    got = nme(gt + off, gt)
    w = gt[..., 0].max(1) - gt[..., 0].min(1)
    h = gt[..., 1].max(1) - gt[..., 1].min(1)
    np.testing.assert_allclose(got, 5.0 / np.sqrt(w * h), rtol=1e-12)
    np.testing.assert_allclose(nme(gt + off, gt, norm="diag"), 5.0 / np.hypot(w, h), rtol=1e-12)
    # torch input works the same
    np.testing.assert_allclose(nme(torch.tensor(gt + off), torch.tensor(gt)), got)


def test_nme_ipd_iod_hand_built():
    gt = np.zeros((1, 68, 2))
    gt[0, 36:42] = [10.0, 50.0]                     # left eye points all at (10, 50)
    gt[0, 42:48] = [40.0, 50.0]
    gt[0, 36] = [6.0, 50.0]                         # outer corners 36 and 45 (0-based)
    gt[0, 45] = [46.0, 50.0]
    # eye centres: (10 - 4/6, 50) and (40 + 6/6, 50)
    ipd = (40 + 1.0) - (10 - 4 / 6)
    np.testing.assert_allclose(normalizer(gt, "ipd"), [ipd])
    np.testing.assert_allclose(normalizer(gt, "iod"), [40.0])
    pred = gt + [0.0, 2.0]
    np.testing.assert_allclose(nme(pred, gt, "iod"), [2.0 / 40.0])
    with pytest.raises(ValueError, match="gt"):
        nme(pred[:, :21], gt[:, :21], "ipd")


def test_nme_visibility():
    gt = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 40.0], [500.0, 500.0]]])
    pred = gt.copy()
    pred[0, :3] += [0.0, 2.0]
    pred[0, 3] = np.nan                             # invisible point: ignored entirely
    vis = np.array([[1, 1, 1, 0]])
    np.testing.assert_allclose(nme(pred, gt, visibility=vis), [2.0 / 20.0])
    with pytest.raises(ValueError, match="visible"):
        nme(pred, gt, visibility=np.zeros((1, 4)))
    with pytest.raises(ValueError, match="visibility"):
        nme(pred, gt, visibility=np.ones((1, 3)))
    with pytest.raises(ValueError, match="norm"):
        nme(pred, gt, norm="eyes")
    with pytest.raises(ValueError, match="degenerate"):
        nme(pred[:, :2], np.zeros((1, 2, 2)))


def test_bucket_by_yaw_maths():
    errors = np.array([1.0, 3.0, 10.0, 20.0, 30.0, 100.0])
    yaw = np.array([-5.0, 30.0, 30.5, -60.0, 61.0, -89.0])
    r = bucket_by_yaw(errors, yaw)
    assert r["counts"] == [2, 2, 2]
    np.testing.assert_allclose(r["buckets"], [2.0, 15.0, 65.0])
    np.testing.assert_allclose(r["mean"], 82.0 / 3)
    np.testing.assert_allclose(r["std"], np.std([2.0, 15.0, 65.0], ddof=1))
    np.testing.assert_allclose(r["overall"], errors.mean())
    assert r["labels"] == ["[0, 30]", "[30, 60]", "[60, 90]"]


def test_bucket_std_matches_thesis_table():
    # DAMDNet's AFLW row of table 6.1: 4.359 / 5.209 / 6.028 -> mean 5.199, std 0.835
    r = bucket_by_yaw([4.359, 5.209, 6.028], [0.0, 45.0, 75.0])
    assert round(r["mean"], 3) == 5.199 and round(r["std"], 3) == 0.835


def test_bucket_empty_and_errors():
    r = bucket_by_yaw([1.0, 2.0], [10.0, 20.0])
    assert r["counts"] == [2, 0, 0] and math.isnan(r["buckets"][1]) and math.isnan(r["mean"])
    with pytest.raises(ValueError, match="yaw"):
        bucket_by_yaw([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="edges"):
        bucket_by_yaw([1.0], [1.0], edges=(60, 30))


def test_format_table_layout():
    a = bucket_by_yaw([0.04217, 0.05004, 0.0577], [0.0, 45.0, 75.0])
    b = [0.02795, 0.03593, 0.04695, 0.03695, 0.00954]
    txt = format_yaw_table({"Ours": {"AFLW (21 pts)": a, "AFLW2000-3D (68 pts)": b},
                            "3DFAN": {"AFLW2000-3D (68 pts)": b}})
    lines = txt.splitlines()
    assert lines[0].startswith("|  | AFLW (21 pts) |")
    assert lines[1] == ("| Method | [0, 30] | [30, 60] | [60, 90] | Mean | Std | [0, 30] | "
                        "[30, 60] | [60, 90] | Mean | Std |")
    assert lines[2].startswith("|---|")
    assert lines[3] == ("| Ours | 4.217 | 5.004 | 5.770 | 4.997 | 0.777 | 2.795 | 3.593 | "
                        "4.695 | 3.695 | 0.954 |")
    assert lines[4].startswith("| 3DFAN | - | - | - | - | - | 2.795")
    single = format_yaw_table({"x": a}, style="text").splitlines()
    assert single[0].split() == ["Method", "[0,", "30]", "[30,", "60]", "[60,", "90]", "Mean",
                                 "Std"]
    assert single[1].split()[1:] == ["4.217", "5.004", "5.770", "4.997", "0.777"]


def test_aflw21_mapping_hand_built():
    p = np.zeros((1, 68, 2))
    p[0, :, 0] = np.arange(1, 69)                    # x = 1-based index
    p[0, :, 1] = 2 * np.arange(1, 69)
    q = aflw21_from_68(p)
    assert q.shape == (1, 21, 2)
    expected_x = [np.mean(g) for g in AFLW21_FROM_68]
    np.testing.assert_allclose(q[0, :, 0], expected_x)
    np.testing.assert_allclose(q[0, :, 1], 2 * np.asarray(expected_x))
    # spot checks from the README's groups
    assert q[0, 0, 0] == 18 and q[0, 7, 0] == 39.5 and q[0, 10, 0] == 45.5
    assert q[0, 18, 0] == 64.5 and q[0, 20, 0] == 9 and q[0, 12, 0] == 3


def test_aflw_dev_scoring():
    rng = np.random.default_rng(1)
    pred68 = rng.uniform(100, 300, size=(2, 68, 2))
    gt21 = aflw21_from_68(pred68).copy()
    vis = np.ones((2, 21), bool)
    vis[0, [0, 5, 12]] = False
    stored = gt21.transpose(0, 2, 1).copy()         # (B, 2, 21) like labels.npz
    stored[0, 0, [0, 5, 12]] = -1                    # x = -1, y a placeholder (as in the data)
    stored[0, 1, [0, 5, 12]] = 452.0
    np.testing.assert_array_equal(aflw21_visibility(stored), vis)
    assert np.all(aflw_dev_nme(pred68, stored) == 0)
    shifted = pred68 + [6.0, 8.0]                    # every mapped point moves by 10
    got = aflw_dev_nme(shifted, stored)
    g = gt21[0][vis[0]]
    wh = g.max(0) - g.min(0)
    np.testing.assert_allclose(got[0], 10.0 / np.sqrt(wh[0] * wh[1]))


def test_aflw2000_protocol():
    gt = _face68(3)
    pred = gt + [0.0, -2.0]
    np.testing.assert_allclose(aflw2000_nme(pred, gt), nme(pred, gt, "box"))
    stored = np.concatenate([gt, np.zeros((3, 68, 1))], axis=2).transpose(0, 2, 1)  # (B,3,68)
    np.testing.assert_allclose(aflw2000_nme(pred, stored), nme(pred, gt, "box"))


def test_ced_auc_acc():
    e = np.array([0.01, 0.03, 0.05, 0.2])
    x, f = ced_curve(e, max_error=0.1, num=11)
    np.testing.assert_allclose(f, [0, .25, .25, .5, .5, .75, .75, .75, .75, .75, .75])
    # AUC of the step function: mean(max(0, eps - e)) / eps
    np.testing.assert_allclose(auc(e, 0.1), (0.09 + 0.07 + 0.05 + 0) / 4 / 0.1)
    assert auc(np.zeros(5), 0.07) == 1.0
    assert auc(np.full(5, 0.5), 0.07) == 0.0
    # a single error at eps/2: CED is 0 then 1 -> area = half
    np.testing.assert_allclose(auc([0.04], 0.08), 0.5)
    assert accuracy(e, 0.05) == 0.5 and failure_rate(e, 0.05) == 0.5
    assert accuracy(e) == 0.75 and failure_rate(e) == 0.25
    # the CED integral by quadrature agrees with the closed form
    x, f = ced_curve(e, max_error=0.07, num=70001)
    np.testing.assert_allclose(np.trapezoid(f, x) / 0.07, auc(e, 0.07), atol=1e-4)
    with pytest.raises(ValueError, match="threshold"):
        auc(e, 0)
    with pytest.raises(ValueError, match="NaN"):
        auc([np.nan], 0.07)


def test_plot_ced_writes_png(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "ced.png"
    out = plot_ced({"a": rng.uniform(0, 0.1, 50), "b": rng.uniform(0, 0.05, 50)}, path,
                   title="test", thresholds=(0.07,))
    assert out == str(path)
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileNotFoundError, match="path"):
        plot_ced({"a": [0.1]}, tmp_path / "missing" / "x.png")


def _shared_dir():
    return shared_dir()


def test_aflw_dev_labels_visibility_and_self_score():
    path = _shared_dir() / "data" / "aflw-dev" / "labels.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found (set PYFACE3D_SHARED)")
    with np.load(path, allow_pickle=False) as d:
        pts21, yaw = d["pts21"][:300], d["yaw"][:300]
    vis = aflw21_visibility(pts21)
    assert vis.shape == (300, 21) and vis.sum(1).min() >= 3 and not vis.all()
    gt = pts21.transpose(0, 2, 1)
    # a perfect 21-point prediction scores 0; a 2 px shift scores 2 / sqrt(w h)
    e = nme(gt + [0.0, 2.0], gt, visibility=vis)
    assert np.all(e > 0) and np.all(e < 0.05)
    r = bucket_by_yaw(e, yaw)
    assert sum(r["counts"]) == 300
