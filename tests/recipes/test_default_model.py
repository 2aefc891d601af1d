import json

import pytest

from pyface3d.cli import main
from pyface3d.recipes.default_model import MIXES, REAL_SOURCES, Recipe


def _fake_labels(r: Recipe, sources=("300w_train",)):
    for s in sources:
        r.labels_path(s).parent.mkdir(parents=True, exist_ok=True)
        r.labels_path(s).write_text("[]")


def test_paths_stay_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PYFACE3D_CACHE", str(tmp_path / "c"))
    r = Recipe(shared=tmp_path / "shared")
    assert r.cache == tmp_path / "c" / "default_model"
    for mix in MIXES:
        assert r.run_dir(mix).parent == r.cache / "runs" and "+" not in r.run_dir(mix).name
    assert r.images_root("lfw") == tmp_path / "shared" / REAL_SOURCES["lfw"]
    with pytest.raises(ValueError, match="source"):
        r.images_root("aflw-dev")


def test_mix_configs(tmp_path):
    r = Recipe(cache=tmp_path / "c", shared=tmp_path / "shared")
    with pytest.raises(FileNotFoundError, match="recipe build"):
        r.config("R")
    _fake_labels(r, ("300w_train", "lfw"))
    c = r.config("R", epochs=3)
    assert [d["type"] for d in c["data"]] == ["images", "images"]
    assert all(d["augment"] for d in c["data"]) and c["morphable"] == "ict"
    assert c["epochs"] == 3 and c["out_dir"] == str(r.run_dir("R"))
    with pytest.raises(FileNotFoundError, match="profile"):
        r.config("RA")
    d = r.profile_dir("lfw")
    d.mkdir(parents=True)
    (d / "labels.json").write_text("[]")
    assert len(r.config("RA")["data"]) == 3
    with pytest.raises(FileNotFoundError, match="synth"):
        r.config("RA+S")
    r.synth_dir.mkdir(parents=True)
    (r.synth_dir / "layout.json").write_text("{}")
    c = r.config("RA+S", synth_limit=100)
    assert c["data"][-1] == {"type": "synth", "root": str(r.synth_dir), "augment": True,
                             "limit": 100}
    assert [e["type"] for e in r.config("S")["data"]] == ["synth"]
    with pytest.raises(ValueError, match="mix"):
        r.config("X")
    # never aflw-dev: validation is the 300W dev set (absent here -> none)
    assert c["val"] is None
    p = r.write_config("R")
    assert json.loads(p.read_text())["data"][0]["labels"] == str(r.labels_path("300w_train"))
    # named runs: a step budget, validation between epochs, warm start from another run
    with pytest.raises(FileNotFoundError, match="--init 'R'"):
        r.config("RA", init="R")
    (r.run_dir("R") / "best.pt").write_bytes(b"x")
    p = r.write_config("RA", run="RA_long", total_steps=500, val_every_steps=50, init="R")
    c = json.loads(p.read_text())
    assert p.parent == r.run_dir("RA_long") and c["out_dir"] == str(r.run_dir("RA_long"))
    assert c["init"] == str(r.run_dir("R") / "best.pt")
    assert (c["total_steps"], c["val_every_steps"]) == (500, 50)
    assert r.run_mix("RA_long") == "RA" and r.run_mix("R") == "R"
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="run name"):
            r.run_dir(bad)


def test_cli_errors(tmp_path, capsys):
    assert main(["recipe", "train", "--mix", "Q", "--cache", str(tmp_path)]) == 2
    assert "--mix" in capsys.readouterr().err
    assert main(["recipe", "build", "--stages", "nope", "--cache", str(tmp_path)]) == 2
    assert main(["recipe", "build", "--stages", "profile", "--cache", str(tmp_path),
                 "--shared", str(tmp_path / "missing")]) == 2
    assert "PYFACE3D_SHARED" in capsys.readouterr().err


def test_ship_writes_fp16_weights_the_pipeline_loads(tmp_path, monkeypatch):
    import numpy as np
    import torch
    from pyface3d import models
    from pyface3d.morphable import resolve
    from pyface3d.pipeline import FaceReconstructor
    from pyface3d.train.trainer import CHECKPOINT_VERSION, save_checkpoint
    mm = resolve("ict")  # the shipped model
    r = Recipe(cache=tmp_path / "c", shared=tmp_path / "s")
    net = models.create("mobilenet_v1_x0.5", num_params=mm.num_params, seed=0)
    r.run_dir("R").mkdir(parents=True)
    ck = {"version": CHECKPOINT_VERSION, "model": net.state_dict(),
          "model_name": "mobilenet_v1_x0.5", "num_params": mm.num_params, "model_kwargs": {},
          "morphable_sha256": mm.sha256(), "val_nme": 0.05, "step": 10}
    save_checkpoint(r.run_dir("R") / "best.pt", ck)
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "SHA256SUMS").write_text("abc  other.bin\n")
    info = r.ship("R", package_dir=pkg)
    assert torch.load(pkg / "pyface3d_default.pt", weights_only=True)["recipe"]["mix"] == "R"
    sums = (pkg / "SHA256SUMS").read_text().splitlines()
    assert sums == ["abc  other.bin", f"{info['sha256']}  pyface3d_default.pt"]
    saved = torch.load(pkg / "pyface3d_default.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    rec = FaceReconstructor.from_weights(pkg / "pyface3d_default.pt")
    x = np.zeros((1, 3, 120, 120), np.float32)
    ref = net.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(rec.backend(x), ref, atol=1e-2 * (1 + np.abs(ref).max()))
    # another morphable model's weights are refused
    ck["morphable_sha256"] = "0" * 64
    r.run_dir("RA").mkdir(parents=True)
    save_checkpoint(r.run_dir("RA") / "best.pt", ck)
    with pytest.raises(ValueError, match="shipped"):
        r.ship("RA", package_dir=pkg)
    with pytest.raises(FileNotFoundError, match="train it first"):
        r.ship("S", package_dir=pkg)


def test_eval_compares_runs_and_plots(tmp_path):
    """`recipe eval`: one row per run (its best.pt preferred), the table and a CED plot."""
    import numpy as np
    from pyface3d import models
    from pyface3d.morphable import resolve
    from pyface3d.train.trainer import CHECKPOINT_VERSION, save_checkpoint
    mm = resolve("ict")
    r = Recipe(cache=tmp_path / "c", shared=tmp_path / "s")
    root = tmp_path / "s" / "data" / "aflw-dev"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    names, pts = [], []
    for i, yaw in enumerate([10.0, 45.0, 80.0]):
        import cv2
        cv2.imwrite(str(root / "images" / f"i{i}.png"), rng.integers(0, 255, (120, 120, 3),
                                                                     np.uint8))
        names.append(f"i{i}.png")
        pts.append(rng.uniform(30, 90, (2, 21)))
    np.savez(root / "labels.npz", names=np.array(names), pts21=np.array(pts),
             yaw=np.array([10.0, 45.0, 80.0]), roi_box=np.tile([0, 0, 120, 120], (3, 1)),
             source_index=np.arange(3))
    for run, seed in (("R", 0), ("RA_x", 1)):
        net = models.create("mobilenet_v1_x0.5", num_params=mm.num_params, seed=seed)
        r.run_dir(run).mkdir(parents=True)
        save_checkpoint(r.run_dir(run) / "best.pt", {
            "version": CHECKPOINT_VERSION, "model": net.state_dict(),
            "model_name": "mobilenet_v1_x0.5", "num_params": mm.num_params,
            "model_kwargs": {}, "morphable_sha256": mm.sha256()})
    (r.run_dir("RA_x") / "recipe.json").write_text(json.dumps({"mix": "RA"}))
    table = r.evaluate(["R", "RA_x", "S"], teacher=False, progress=False)
    rows = table.strip().splitlines()
    assert len(rows) == 4  # header, rule, two trained runs (S has none)
    assert rows[2].startswith("| pyface3d R (best.pt) |")
    assert rows[3].startswith("| pyface3d RA, run RA_x (best.pt) |")
    assert all(len(row.split("|")) == 7 for row in rows[2:])
    assert (r.cache / "eval" / "comparison.md").read_text() == table
    assert (r.cache / "eval" / "comparison_ced.png").stat().st_size > 1000
