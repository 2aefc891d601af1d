"""The folder driver and the ``augment profile`` command on synthetic images."""
import argparse
import csv
import json
import os

import cv2
import numpy as np
import pytest
import torch

from pyface3d.augment import FaceProfiler, add_parser, profile_folder, read_landmark_records
from pyface3d.cli import main
from pyface3d.data import ImageLabelsDataset, crop_to_image, write_pts

from .synth import make_params, render_scene

ROI = np.array([0.0, 0.0, 160.0, 160.0])


def _scene(model, yaw, seed):
    p = make_params(model, yaw=yaw, pitch=-3.0, roll=2.0, seed=seed)
    img, _, _, vi = render_scene(model, p, ROI)
    return img, vi[model.landmarks68.numpy(), :2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, synth_model):
    """Two synthetic images in a sub-folder with 300W .pts files (1-based) beside them."""
    root = tmp_path_factory.mktemp("src")
    os.makedirs(root / "sub")
    for k, (name, yaw) in enumerate([("sub/a.png", 15.0), ("b.png", -25.0)]):
        img, lm = _scene(synth_model, yaw, seed=k + 3)
        cv2.imwrite(str(root / name), img)
        write_pts(str(root / name)[:-4] + ".pts", lm + 1.0)
    return root


@pytest.fixture(scope="module")
def model_npz(tmp_path_factory, synth_model):
    path = tmp_path_factory.mktemp("model") / "synth.npz"
    synth_model.save(str(path))
    return str(path)


def _run(folder, out, model, **kw):
    opts = dict(views=3, yaw_step=20.0, ext="png", model=model, progress=False)
    opts.update(kw)
    return profile_folder(str(folder), str(out), **opts)


def test_outputs_and_labels_round_trip(folder, tmp_path, synth_model):
    out = tmp_path / "out"
    res = _run(folder, out, synth_model)
    assert res["sources"] == 2 and res["views"] == 6 and res["processed"] == 2
    labels = json.loads((out / "labels.json").read_text())
    assert [r["name"] for r in labels] == [f"images/{s}_{k:02d}.png" for s in ("b", "sub/a") for k in range(3)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_views"] == 6 and manifest["sources"][1]["source"] == os.path.join("sub", "a.png")
    # the labels equal what profiling the image directly gives
    src = cv2.imread(str(folder / "b.png"))
    lm = read_landmark_records(str(folder))[0]["landmarks"]
    direct = FaceProfiler(synth_model).profile(src, lm, views=3, yaw_step=20.0)
    m64 = synth_model.to("cpu", torch.float64)
    for r, v in zip(labels[:3], direct):
        assert np.allclose(r["landmarks"], v.landmarks, atol=1e-4)
        assert r["visibility"] == v.visibility.astype(int).tolist()
        assert r["yaw_delta"] == v.yaw_delta and r["yaw"] == pytest.approx(v.yaw, abs=1e-4)
        assert np.array_equal(cv2.imread(str(out / r["name"])), v.image)
        # parameters (float32 precision in the file) reproduce the landmarks through the roi
        rec = m64.reconstruct(torch.tensor(r["params"], dtype=torch.float64)[None], landmarks_only=True)
        lm_p = crop_to_image(rec.numpy(), np.asarray(r["roi"])[None])[0, :, :2]
        assert np.abs(lm_p - np.asarray(r["landmarks"])).max() < 5e-3
    # JSON and CSV both load through ImageLabelsDataset with the same values
    for name in ("labels.json", "labels.csv"):
        ds = ImageLabelsDataset(str(out), str(out / name))
        assert len(ds) == 6
        for i, r in enumerate(labels):
            s = ds.load(i)
            assert s["name"] == r["name"] and s["image"].shape == (160, 160, 3)
            assert np.allclose(s["landmarks"], r["landmarks"], atol=1e-9)
            assert np.allclose(s["roi"], r["roi"]) and s["yaw"] == pytest.approx(r["yaw"])
            assert np.allclose(ds.records[i]["params"], r["params"], rtol=1e-6)
        item = ds[0]
        assert item["image"].shape == (3, 120, 120) and item["params"].shape == (synth_model.num_params,)
    with open(out / "labels.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert [int(row[f"vis_{j}"]) for j in range(68)] == labels[0]["visibility"]


def test_resume_skips_done_images_and_is_deterministic(folder, tmp_path, synth_model):
    out = tmp_path / "out"
    _run(folder, out, synth_model)
    before = {p: (out / p).read_bytes() for p in ("labels.json", "labels.csv", "manifest.json",
                                                  "images/sub/a_02.png", "images/b_01.png")}
    again = _run(folder, out, synth_model)
    assert again["processed"] == 0 and again["done_before"] == 2
    os.remove(out / "parts" / "sub" / "a.json")   # as if interrupted before this part
    os.remove(out / "images" / "sub" / "a_02.png")
    third = _run(folder, out, synth_model)
    assert third["processed"] == 1 and third["done_before"] == 1
    for p, data in before.items():
        assert (out / p).read_bytes() == data, p
    assert not [f for f in os.listdir(out / "images") if f.endswith(".tmp")]
    with pytest.raises(ValueError, match="other settings"):
        _run(folder, out, synth_model, views=2)


def test_labels_json_and_csv_inputs(folder, tmp_path, synth_model):
    recs = read_landmark_records(str(folder))
    js = tmp_path / "in.json"
    js.write_text(json.dumps([{"name": r["name"], "landmarks": r["landmarks"].tolist()} for r in recs]))
    cs = tmp_path / "in.csv"
    with open(cs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name"] + [f"lmk_{j}_{c}" for j in range(68) for c in "xy"])
        for r in recs:
            w.writerow([r["name"]] + r["landmarks"].ravel().tolist())
    a = _run(folder, tmp_path / "o1", synth_model, labels=str(js), yaw_deltas=[0.0, 30.0])
    b = _run(folder, tmp_path / "o2", synth_model, labels=str(cs), yaw_deltas=[0.0, 30.0])
    assert a["views"] == b["views"] == 4
    assert (tmp_path / "o1" / "labels.json").read_bytes() == (tmp_path / "o2" / "labels.json").read_bytes()


def test_bad_inputs(folder, tmp_path, synth_model):
    with pytest.raises(FileNotFoundError, match="images"):
        _run(tmp_path / "nope", tmp_path / "o", synth_model)
    with pytest.raises(FileNotFoundError, match="labels"):
        _run(folder, tmp_path / "o", synth_model, labels=str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "ghost.png", "landmarks": [[1.0, 2.0]] * 68}]))
    with pytest.raises(FileNotFoundError, match="ghost.png"):
        _run(folder, tmp_path / "o", synth_model, labels=str(bad))
    bad.write_text(json.dumps([{"name": "b.png", "landmarks": [[1.0, 2.0]] * 67}]))
    with pytest.raises(ValueError, match="67 landmarks"):
        _run(folder, tmp_path / "o", synth_model, labels=str(bad))
    bad.write_text(json.dumps([{"name": "b.png", "box": [10, 10, 90, 90]}]))
    with pytest.raises(ValueError, match="no landmarks"):
        _run(folder, tmp_path / "o", synth_model, labels=str(bad))
    with pytest.raises(ValueError, match="ext"):
        _run(folder, tmp_path / "o", synth_model, ext="gif")
    with pytest.raises(ValueError, match="workers"):
        _run(folder, tmp_path / "o", synth_model, workers=0)
    with pytest.raises(ValueError, match="views"):
        _run(folder, tmp_path / "o", synth_model, views=40)
    dup = tmp_path / "dup"
    os.makedirs(dup)
    img = cv2.imread(str(folder / "b.png"))
    for ext in ("png", "jpg"):
        cv2.imwrite(str(dup / f"x.{ext}"), img)
    lm = read_landmark_records(str(folder))[0]["landmarks"]
    (dup / "l.json").write_text(json.dumps([{"name": n, "landmarks": lm.tolist()} for n in ("x.png", "x.jpg")]))
    with pytest.raises(ValueError, match="same views"):
        _run(dup, tmp_path / "o3", synth_model, labels=str(dup / "l.json"))


def test_cli(folder, tmp_path, model_npz, capsys):
    out = tmp_path / "cli"
    args = ["augment", "profile", "--images", str(folder), "--out", str(out), "--views", "2",
            "--yaw-step", "30", "--ext", "png", "--model", model_npz, "--no-progress"]
    assert main(args) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["views"] == 4 and res["processed"] == 2
    assert len(ImageLabelsDataset(str(out), str(out / "labels.csv"))) == 4
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["processed"] == 0
    # errors: a message naming the problem and exit code 2
    assert main(["augment", "profile", "--images", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "--images" in capsys.readouterr().err
    assert main(args[:-1] + ["--views", "3"]) == 2
    assert "other settings" in capsys.readouterr().err
    # add_parser registers the command on any parser
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    ns = p.parse_args(["augment", "profile", "--images", "i", "--out", "o"])
    assert ns.views == 11 and ns.yaw_step == 15.0 and ns.mode == "outward" and callable(ns.fn)
    assert ns.face_cut == (0.06, 0.1) and ns.pivot == "centroid" and ns.threads == 1
    ns = p.parse_args(["augment", "profile", "--images", "i", "--out", "o", "--face-cut", "none",
                       "--yaw-deltas", "0,-15,30"])
    assert ns.face_cut is None and ns.yaw_deltas == [0.0, -15.0, 30.0]
    with pytest.raises(SystemExit):
        p.parse_args(["augment", "profile", "--images", "i", "--out", "o", "--yaw-deltas", "a,b"])


def test_workers_give_the_same_files(folder, tmp_path, synth_model):
    _run(folder, tmp_path / "w1", synth_model, workers=1)
    _run(folder, tmp_path / "w2", synth_model, workers=2)
    for p in ("labels.json", "labels.csv", "images/sub/a_01.png", "images/b_02.png"):
        assert (tmp_path / "w1" / p).read_bytes() == (tmp_path / "w2" / p).read_bytes()
