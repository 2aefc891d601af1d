import json
import os

import cv2
import numpy as np
import pytest

from pyface3d.cli import main

from .conftest import lfpw_images, teacher_dir


def test_align_with_the_teacher_writes_every_requested_output(tmp_path, capsys):
    img = lfpw_images(1)[0]
    rc = main(["align", img, "--teacher", str(teacher_dir()), "--out", str(tmp_path),
               "--outputs", "landmarks,pose,json", "--no-progress"])
    assert rc == 0
    stem = tmp_path / os.path.splitext(os.path.basename(img))[0]
    for suffix in ("_landmarks.png", "_pose.png", ".json", "_face0.pts"):
        assert (str(stem) + suffix) and os.path.isfile(str(stem) + suffix), suffix
    d = json.load(open(str(stem) + ".json"))
    assert len(d["faces"]) >= 1 and len(d["faces"][0]["landmarks"]) == 68
    # the teacher has no mesh
    rc = main(["align", img, "--teacher", str(teacher_dir()), "--out", str(tmp_path),
               "--outputs", "depth", "--no-progress"])
    assert rc == 2 and "morphable" in capsys.readouterr().err


def test_align_dense_outputs_with_an_untrained_network(tmp_path, monkeypatch):
    """--weights from `pyface3d train` of the toy morphable model: every dense output."""
    import torch
    from pyface3d import models
    from pyface3d.train.trainer import CHECKPOINT_VERSION, save_checkpoint
    from tests.train.toy_model import toy_morphable
    import pathlib
    mm = toy_morphable()
    mm_path = tmp_path / "toy.npz"
    mm.save(mm_path)
    net = models.create("mobilenet_v1_x0.5", num_params=mm.num_params, seed=0)
    w = tmp_path / "model.pt"
    save_checkpoint(pathlib.Path(w), {"version": CHECKPOINT_VERSION,
                                      "model": net.state_dict(), "model_name": "mobilenet_v1_x0.5",
                                      "num_params": mm.num_params, "model_kwargs": {},
                                      "morphable_sha256": mm.sha256()})
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((240, 320, 3), 120, np.uint8))
    out = tmp_path / "out"
    rc = main(["align", str(img), "--weights", str(w), "--morphable", str(mm_path),
               "--boxes", "100,60,220,200", "--out", str(out), "--outputs",
               "landmarks,pose,depth,pncc,mesh,obj,ply,json", "--no-progress"])
    assert rc == 0
    names = set(os.listdir(out))
    assert {"a_depth.png", "a_pncc.png", "a_mesh.png", "a.json", "a_face0.obj", "a_face0.ply",
            "a_face0.pts", "a_landmarks.png", "a_pose.png"} <= names
    d = json.load(open(out / "a.json"))
    assert len(d["faces"]) == 1 and d["faces"][0]["box"] == [100, 60, 220, 200]
    from pyface3d.render import read_obj, read_ply
    assert read_obj(out / "a_face0.obj")["vertices"].shape == (mm.N, 3)
    assert read_ply(out / "a_face0.ply")["vertices"].shape == (mm.N, 3)
    depth = cv2.imread(str(out / "a_depth.png"))
    assert depth.shape == (240, 320, 3) and depth.max() > 0
    assert main(["align", str(img), "--weights", str(w), "--morphable", str(mm_path),
                 "--boxes", "1,2,3", "--out", str(out)]) == 2


def test_align_errors(tmp_path, capsys):
    assert main(["align", str(tmp_path / "none.jpg"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["align", str(tmp_path), "--outputs", "bogus"]) == 2
    assert "--outputs" in capsys.readouterr().err
    txt = tmp_path / "x.jpg"
    txt.write_text("hello")
    rc = main(["align", str(txt), "--teacher", str(teacher_dir()), "--out", str(tmp_path / "o"),
               "--no-progress"])
    assert rc == 1 and "not an image" in capsys.readouterr().err


def test_video_cli(tmp_path, capsys):
    img = cv2.imread(lfpw_images(1)[0])
    clip = tmp_path / "c.avi"
    wr = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    face = cv2.resize(img, (200, 200))
    for i in range(12):
        f = np.full((240, 320, 3), 80, np.uint8)
        f[20:220, 40 + i:240 + i] = face
        wr.write(f)
    wr.release()
    out, js = tmp_path / "o.mp4", tmp_path / "r.json"
    rc = main(["video", str(clip), "--teacher", str(teacher_dir()), "--out", str(out),
               "--json", str(js), "--overlays", "landmarks,box,axes"])
    assert rc == 0 and out.is_file()
    d = json.load(open(js))
    assert d["stats"]["frames_processed"] == 12 and len(d["frames"]) == 12
    assert all(len(f["faces"]) == 1 for f in d["frames"])
    assert "fps" in capsys.readouterr().out
    assert main(["video", str(tmp_path / "none.mp4"), "--teacher", str(teacher_dir())]) == 2


def test_bench_cli_network_suite(tmp_path, capsys):
    js = tmp_path / "b.json"
    rc = main(["bench", "--suites", "network", "--teacher", str(teacher_dir()), "--batch", "1,2",
               "--min-time", "0.05", "--json", str(js)])
    assert rc == 0
    d = json.load(open(js))
    assert set(d["network"]["backends"]["torch"]) == {"1", "2"}
    assert d["network"]["params"] > 1e5
    assert main(["bench", "--suites", "bogus", "--teacher", str(teacher_dir())]) == 2
