"""pyface3d.eval: known-answer NME on a synthetic aflw-dev folder (stub network and a
trained-weights checkpoint), output files, CLI errors."""
import json
import math

import cv2
import numpy as np
import pytest
import torch

from pyface3d import metrics
from pyface3d.cli import main
from pyface3d.data import KeypointBases
from pyface3d.data.roi import crop_to_image
from pyface3d.eval import EvalResult, LandmarkPredictor, evaluate_aflw, evaluate_aflw2000

YAWS = np.array([10.0, -25.0, 40.0, -55.0, 70.0, -88.0])     # two per |yaw| bucket
ROIS = np.array([[10, 20, 130, 140], [0, 0, 240, 240], [-30, 5, 90, 125],
                 [50, 60, 110, 120], [100, 100, 340, 340], [7.5, 3.25, 187.5, 183.25]])


class ConstNet(torch.nn.Module):
    """Ignores the image, outputs a fixed (P,) vector for every crop."""

    def __init__(self, out):
        super().__init__()
        self.register_buffer("out", torch.as_tensor(out, dtype=torch.float32))

    def forward(self, x):
        assert x.shape[1:] == (3, 120, 120)
        return self.out.expand(x.shape[0], -1)


def _bases():
    rng = np.random.default_rng(1)
    mean = (rng.uniform(-35, 35, size=(68, 3))).ravel()
    return KeypointBases(mean, rng.normal(size=(204, 2)), rng.normal(size=(204, 1)))


def _target_params():
    # [s R | t] with s = 1, R = I, t = (60, 60, 0); zero shape/expression coefficients
    return np.array([1, 0, 0, 60, 0, 1, 0, 60, 0, 0, 1, 0, 0, 0, 0], np.float64)


def _stub_predictor():
    kb = _bases()
    target = _target_params()
    std = np.linspace(0.5, 2.0, target.size)
    mean = target - 0.25 * std                   # network output 0.25 -> exactly `target`
    return LandmarkPredictor(ConstNet(np.full(target.size, 0.25)), torch.from_numpy(mean),
                             torch.from_numpy(std),
                             lambda p: torch.from_numpy(kb.reconstruct(p.numpy())), "stub")


def _pred_image(lm_crop):
    """(68, 3) crop-frame landmarks -> (N, 68, 2) image points for every ROI."""
    return crop_to_image(np.repeat(lm_crop[None], len(ROIS), 0), ROIS)[..., :2]


def _write_aflw(root, pred68_img, offsets, invisible=()):
    """aflw-dev layout: ground truth = the prediction's 21 points shifted by offsets[i]
    (px); points in ``invisible`` (sample, point) get the -1 placeholder."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(len(ROIS)):
        name = f"img{i:03d}.png"
        cv2.imwrite(str(root / "images" / name), rng.integers(0, 255, (120, 120, 3), np.uint8))
        names.append(name)
    gt = metrics.aflw21_from_68(pred68_img) + np.asarray(offsets)[:, None, :]
    for i, k in invisible:
        gt[i, k] = -1.0
    np.savez(root / "labels.npz", names=np.array(names), pts21=gt.transpose(0, 2, 1),
             yaw=YAWS, roi_box=ROIS.astype(np.float32), source_index=np.arange(len(ROIS)))
    return gt


def _expected(gt, dist):
    vis = (gt != -1).all(-1)
    out = []
    for g, v, d in zip(gt, vis, dist):
        wh = g[v].max(0) - g[v].min(0)
        out.append(d / math.sqrt(wh[0] * wh[1]))
    return np.array(out)


def test_aflw_known_offsets(tmp_path):
    kb = _bases()
    lm = kb.reconstruct(_target_params())
    pred = _pred_image(lm)
    dist = np.arange(1, len(ROIS) + 1, dtype=np.float64)          # px
    ang = np.linspace(0, 2, len(ROIS))
    offsets = np.stack([dist * np.cos(ang), dist * np.sin(ang)], 1)
    gt = _write_aflw(tmp_path / "aflw", pred, offsets, invisible=[(0, 3), (2, 20), (2, 0)])
    res = evaluate_aflw(tmp_path / "aflw", predictor=_stub_predictor(), batch_size=4,
                        progress=False, out=tmp_path / "out")
    want = _expected(gt, dist)
    np.testing.assert_allclose(res.errors, want, rtol=1e-5)
    means = [want[0:2].mean(), want[2:4].mean(), want[4:6].mean()]
    np.testing.assert_allclose(res.buckets["buckets"], means, rtol=1e-5)
    assert res.buckets["counts"] == [2, 2, 2]
    assert res.mean == pytest.approx(np.mean(means), rel=1e-5)
    assert res.buckets["std"] == pytest.approx(np.std(means, ddof=1), rel=1e-4)
    assert res.names == [f"img{i:03d}.png" for i in range(6)]
    # files
    files = res.info["files"]
    for k in ("markdown", "json", "ced"):
        assert (tmp_path / "out").joinpath(files[k].split("/")[-1]).stat().st_size > 0
    with open(files["ced"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    md = open(files["markdown"]).read()
    assert "| [0, 30] | [30, 60] | [60, 90] | Mean | Std |" in md
    assert f"{100 * np.mean(means):.3f}" in md
    js = json.load(open(files["json"]))
    assert js["counts"] == [2, 2, 2] and len(js["per_image"]) == 6
    assert js["per_image"][5]["nme"] == pytest.approx(want[5], rel=1e-5)
    assert js["per_image"][1]["yaw"] == -25.0
    assert js["nme_mean_percent"] == pytest.approx(100 * np.mean(means), rel=1e-5)


def test_aflw_exact_prediction_is_zero(tmp_path):
    lm = _bases().reconstruct(_target_params())
    _write_aflw(tmp_path / "aflw", _pred_image(lm), np.zeros((len(ROIS), 2)))
    res = evaluate_aflw(tmp_path / "aflw", predictor=_stub_predictor(), batch_size=128,
                        progress=False)
    assert isinstance(res, EvalResult)
    assert np.abs(res.errors).max() < 1e-6
    assert "files" not in res.info
    assert res.info["optimized"] is True            # ConstNet traces


def test_aflw_trained_weights_and_cli(tmp_path, capsys):
    """model.pt in `pyface3d train`'s format with a constant head: the known prediction
    comes through load_trained, the morphable model's whitening and reconstruct."""
    from pyface3d import models
    from pyface3d.train.trainer import CHECKPOINT_VERSION
    from tests.morphable._synth import random_model

    mm = random_model(N=80, I=3, E=2)
    mm_path = tmp_path / "mm.npz"
    mm.save(mm_path)
    mm = type(mm).load(mm_path)
    target = torch.tensor([[0.5, 0, 0, 60, 0, 0.5, 0, 60, 0, 0, 0.5, 0, 0.3, -0.2, 0.1,
                            0.2, -0.1]], dtype=torch.float32)
    net = models.create("mobilenet_v1_x0.5", num_params=mm.num_params, seed=0)
    with torch.no_grad():
        net.fc.weight.zero_()
        net.fc.bias.copy_(((target - mm.param_mean) / mm.param_std)[0])
    torch.save({"version": CHECKPOINT_VERSION, "model": net.state_dict(),
                "model_name": "mobilenet_v1_x0.5", "model_kwargs": {},
                "num_params": mm.num_params, "morphable_sha256": mm.sha256()},
               tmp_path / "model.pt")
    lm = mm.reconstruct(target, landmarks_only=True)[0].double().numpy()
    pred = _pred_image(lm)
    offsets = np.tile([[0.0, 1.5]], (len(ROIS), 1))
    gt = _write_aflw(tmp_path / "aflw", pred, offsets)
    want = _expected(gt, np.full(len(ROIS), 1.5))
    rc = main(["eval", "aflw", "--root", str(tmp_path / "aflw"), "--weights",
               str(tmp_path / "model.pt"), "--morphable", str(mm_path), "--out",
               str(tmp_path / "out"), "--batch-size", "4", "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "[0, 30]" in out and "Mean" in out
    js = json.load(open(tmp_path / "out" / "aflw_nme.json"))
    got = np.array([r["nme"] for r in js["per_image"]])
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert (tmp_path / "out" / "aflw_ced.png").stat().st_size > 0
    assert (tmp_path / "out" / "aflw_nme.md").stat().st_size > 0
    # the same weights with another morphable model are refused
    other = tmp_path / "other.npz"
    random_model(N=80, I=3, E=2, seed=5).save(other)
    rc = main(["eval", "aflw", "--root", str(tmp_path / "aflw"), "--weights",
               str(tmp_path / "model.pt"), "--morphable", str(other), "--no-progress",
               "--out", str(tmp_path / "out2")])
    assert rc == 2
    assert "--morphable" in capsys.readouterr().err


def _cli_err(capsys, argv):
    rc = main(argv)
    assert rc == 2
    return capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
    missing = str(tmp_path / "nope")
    err = _cli_err(capsys, ["eval", "aflw", "--root", missing, "--teacher", missing])
    assert "--root" in err and "not a folder" in err
    (tmp_path / "aflw").mkdir()
    err = _cli_err(capsys, ["eval", "aflw", "--root", str(tmp_path / "aflw"), "--teacher",
                            missing])
    assert "--root" in err and "images" in err
    lm = _bases().reconstruct(_target_params())
    _write_aflw(tmp_path / "ok", _pred_image(lm), np.zeros((len(ROIS), 2)))
    root = str(tmp_path / "ok")
    err = _cli_err(capsys, ["eval", "aflw", "--root", root, "--teacher", missing])
    assert "--teacher" in err and "not a folder" in err
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "u_base.txt").write_text("0\n")
    err = _cli_err(capsys, ["eval", "aflw", "--root", root, "--teacher",
                            str(tmp_path / "teacher")])
    assert "--teacher" in err and "mb05_120x120.pth" in err
    err = _cli_err(capsys, ["eval", "aflw", "--root", root, "--weights", missing])
    assert "--weights" in err and "pyface3d train" in err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    err = _cli_err(capsys, ["eval", "aflw", "--root", root, "--weights",
                            str(tmp_path / "junk.pt")])
    assert "--weights" in err and "pyface3d train" in err
    torch.save({"model": {}}, tmp_path / "other.pt")
    err = _cli_err(capsys, ["eval", "aflw", "--root", root, "--weights",
                            str(tmp_path / "other.pt"), "--morphable", missing])
    assert "--morphable" in err and "no such file" in err
    err = _cli_err(capsys, ["eval", "aflw2000", "--root", root, "--weights", missing])
    assert "--weights" in err
    err = _cli_err(capsys, ["eval", "aflw2000", "--root", missing, "--weights", missing])
    assert "--root" in err
    with pytest.raises(SystemExit):            # argparse: exactly one of --weights/--teacher
        main(["eval", "aflw", "--root", root])
    with pytest.raises(SystemExit):
        main(["eval", "aflw", "--root", root, "--weights", "a", "--teacher", "b"])
    capsys.readouterr()


def test_library_argument_errors(tmp_path):
    lm = _bases().reconstruct(_target_params())
    _write_aflw(tmp_path / "ok", _pred_image(lm), np.zeros((len(ROIS), 2)))
    with pytest.raises(ValueError, match="batch_size"):
        evaluate_aflw(tmp_path / "ok", predictor=_stub_predictor(), batch_size=0,
                      progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_aflw(tmp_path / "ok", progress=False)
    with pytest.raises(FileNotFoundError, match="root"):
        evaluate_aflw2000(tmp_path / "ok", predictor=_stub_predictor(), progress=False)
    with pytest.raises(NotADirectoryError, match="out"):
        (tmp_path / "file").write_text("x")
        evaluate_aflw(tmp_path / "ok", predictor=_stub_predictor(), progress=False,
                      out=tmp_path / "file")
    bad = _stub_predictor()
    bad.net = ConstNet(np.zeros(7))
    with pytest.raises(ValueError, match="do not belong together"):
        evaluate_aflw(tmp_path / "ok", predictor=bad, progress=False)


class IndexNet(torch.nn.Module):
    """Reads the image index from the crop's centre pixel (uniform test images of value
    20 + 30 i): outputs (B, 1) = i."""

    def forward(self, x):
        v = x[:, 0, 60, 60] * 128 + 127.5
        return ((v - 20) / 30).round()[:, None]


def test_aflw2000_known_offsets(tmp_path):
    """Synthetic AFLW2000-3D folder (.png + .mat with pt3d_68, Pose_Para): each prediction is
    the ground truth moved by a known distance -> NME = d / sqrt(w*h) of the 68-point box."""
    import scipy.io as sio

    from pyface3d.data.roi import image_to_crop, roi_from_landmarks

    rng = np.random.default_rng(3)
    n, root = 6, tmp_path / "aflw2000"
    root.mkdir()
    yaws = np.array([5.0, -28.0, 33.0, 59.0, -61.0, 85.0])
    dist = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 6.0])
    gts, preds = [], []
    for i in range(n):
        c = rng.uniform(120, 180, 2)
        gt = np.concatenate([c + rng.uniform(-60, 60, (68, 2)), rng.normal(size=(68, 1))], 1)
        cv2.imwrite(str(root / f"image{i:05d}.png"), np.full((300, 300, 3), 20 + 30 * i,
                                                             np.uint8))
        pt3d = gt.T.copy()
        pt3d[:2] += 1.0                                           # .mat: 1-based pixels
        sio.savemat(root / f"image{i:05d}.mat",
                    {"pt3d_68": pt3d, "Pose_Para": np.array([[0.1, math.radians(yaws[i]),
                                                              0.0, 0, 0, 0, 1e-3]])})
        ang = rng.uniform(0, 2 * math.pi)
        pred = gt.copy()
        pred[:, :2] += dist[i] * np.array([math.cos(ang), math.sin(ang)])
        roi = roi_from_landmarks(gt, matlab_rounding=True)
        preds.append(image_to_crop(pred[None], roi[None])[0])
        gts.append(gt)
    table = torch.from_numpy(np.stack(preds))

    pred = LandmarkPredictor(IndexNet(), torch.zeros(1), torch.ones(1),
                             lambda p: table[p[:, 0].long()], "index")
    res = evaluate_aflw2000(root, predictor=pred, batch_size=4, progress=False,
                            out=tmp_path / "out")
    boxes = [g[:, :2].max(0) - g[:, :2].min(0) for g in gts]
    want = dist / np.array([math.sqrt(b[0] * b[1]) for b in boxes])
    np.testing.assert_allclose(res.errors, want, rtol=1e-6)
    np.testing.assert_allclose(res.yaw, yaws, atol=1e-9)
    assert res.buckets["counts"] == [2, 2, 2]
    np.testing.assert_allclose(res.buckets["buckets"],
                               [want[:2].mean(), want[2:4].mean(), want[4:].mean()], rtol=1e-6)
    assert (tmp_path / "out" / "aflw2000_nme.json").stat().st_size > 0
    assert (tmp_path / "out" / "aflw2000_ced.png").stat().st_size > 0
    assert "AFLW2000-3D (68 pts)" in (tmp_path / "out" / "aflw2000_nme.md").read_text()
