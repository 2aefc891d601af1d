"""Training: config checks, the rendered set, overfitting, exact resume, DDP (gloo, 2 procs)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from pyface3d.metrics import nme
from pyface3d.train import TrainConfig, load_config, train
from pyface3d.train.datasets import RenderedFaces, build
from pyface3d.train.trainer import load_checkpoint, load_trained
from tests.train.toy_model import toy_morphable

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    mm = toy_morphable()
    path = tmp_path_factory.mktemp("mm") / "toy.npz"
    mm.save(path)
    return mm, str(path)


@pytest.fixture(autouse=True)
def _one_thread():
    # small convolutions: one thread is faster here and keeps runs bit-reproducible
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _cfg(out, mm_path, **kw):
    d = dict(out_dir=str(out), data=[{"type": "rendered", "n": 8, "seed": 3, "cache": True}],
             model="mobilenet_v1_x0.5", morphable=mm_path, loss="l2", epochs=1000,
             batch_size=4, lr=3e-3, warmup_epochs=0, workers=0, log_every=2,
             tensorboard=False, weight_decay=0.0)
    d.update(kw)
    return TrainConfig.from_dict(d)


def test_config_rejects_unknown_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="unknown key.*'lrr'"):
        TrainConfig.from_dict({"out_dir": "x", "data": [{"type": "rendered"}], "lrr": 1})
    with pytest.raises(ValueError, match="missing required key"):
        TrainConfig.from_dict({"data": [{"type": "rendered"}]})
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig.from_dict({"out_dir": "x", "data": [{"type": "r"}], "batch_size": 0})
    p = tmp_path / "c.toml"
    p.write_text('out_dir = "o"\nepochs = 2\n[[data]]\ntype = "rendered"\nn = 4\n')
    cfg = load_config(p)
    assert cfg.epochs == 2 and cfg.data == [{"type": "rendered", "n": 4}]
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
    for key in ("total_steps", "warmup_steps", "val_every_steps"):
        with pytest.raises(ValueError, match=key):
            TrainConfig.from_dict({"out_dir": "x", "data": [{"type": "r"}], key: -1})


def test_dataset_registry_errors(toy):
    mm, _ = toy
    with pytest.raises(ValueError, match="unknown type 'nope'"):
        build({"type": "nope"}, mm)
    with pytest.raises(ValueError, match="missing `type`"):
        build({"root": "x"}, mm)


def test_rendered_faces_deterministic_and_consistent(toy):
    mm, _ = toy
    a, b = RenderedFaces(mm, n=4, seed=5), RenderedFaces(mm, n=4, seed=5)
    for i in range(4):
        x, y = a[i], b[i]
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["params"], y["params"])
    s = a[0]
    assert s["image"].shape == (3, 120, 120) and s["params"].shape == (mm.num_params,)
    # the projected landmarks fall inside the crop
    lm = mm.reconstruct(s["params"][None], landmarks_only=True)[0]
    assert (lm[:, 0] > 0).all() and (lm[:, 0] < 120).all()
    assert (lm[:, 1] > 0).all() and (lm[:, 1] < 120).all()
    assert not torch.equal(a[0]["image"], a[1]["image"])
    with pytest.raises(IndexError):
        a[4]


def _landmark_nme(net, mm, ds):
    x = torch.stack([ds[i]["image"] for i in range(len(ds))])
    p = torch.stack([ds[i]["params"] for i in range(len(ds))])
    with torch.no_grad():
        pred = net(x) * mm.param_std + mm.param_mean
    lp = mm.reconstruct(pred, landmarks_only=True)[..., :2]
    lg = mm.reconstruct(p, landmarks_only=True)[..., :2]
    base = mm.reconstruct(mm.param_mean[None].expand(len(ds), -1), landmarks_only=True)[..., :2]
    return nme(lp, lg).mean().item(), nme(base, lg).mean().item()


def test_training_overfits_a_tiny_set(toy, tmp_path):
    mm, path = toy
    cfg = _cfg(tmp_path / "run", path, epochs=150, loss="vdc")  # 2 steps an epoch
    res = train(cfg, device="cpu", progress=False)
    assert res["steps"] == 300
    net = load_trained(res["model"], mm)
    err, baseline = _landmark_nme(net, mm, RenderedFaces(mm, n=8, seed=3))
    # the mean face is ~0.32 NME (box-normalised) from the truth; after 300 steps the
    # network (in eval mode, BatchNorm running statistics) is within ~0.08
    assert err < 0.4 * baseline and err < 0.14, (err, baseline)
    log = (tmp_path / "run" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,loss") and len(log) > 10


def test_resume_is_exact(toy, tmp_path):
    mm, path = toy
    full = train(_cfg(tmp_path / "full", path, max_steps=6), device="cpu", progress=False)
    # an interrupted run (stops after 3 steps, mid-epoch), then the same command again
    train(_cfg(tmp_path / "split", path, max_steps=3), device="cpu", progress=False)
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 3
    resumed = train(_cfg(tmp_path / "split", path, max_steps=6), device="cpu", progress=False)
    assert resumed["steps"] == 6
    a = load_checkpoint(pathlib.Path(full["model"]))["model"]
    b = load_checkpoint(pathlib.Path(resumed["model"]))["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_step_budget_validation_and_init(toy, tmp_path):
    """total_steps sets the run's length and its cosine schedule (ending at lr 0) whatever
    the epoch size; val_every_steps keeps best.pt between epochs; init starts from other
    weights with a fresh optimizer."""
    mm, path = toy
    val = {"type": "rendered", "n": 4, "seed": 9}
    res = train(_cfg(tmp_path / "a", path, total_steps=5, val_every_steps=2, val=val),
                device="cpu", progress=False)
    assert res["steps"] == 5 and res["epochs"] == 2  # 2 steps an epoch: 2 completed
    rows = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    head = rows[0].split(",")
    recs = [dict(zip(head, r.split(","))) for r in rows[1:]]
    val_steps = [int(r["step"]) for r in recs if r.get("val_nme")]
    assert val_steps == [2, 4, 5], val_steps  # every 2 steps, and at the end
    lrs = [float(r["lr"]) for r in recs if r.get("lr")]
    assert lrs[-1] == 0.0  # the schedule ends with the budget
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    vals = {int(r["step"]): float(r["val_nme"]) for r in recs if r.get("val_nme")}
    assert best["step"] in vals and abs(best["val_nme"] - min(vals.values())) < 1e-6
    # init: step 0 of the new run evaluates exactly the given weights
    res_b = train(_cfg(tmp_path / "b", path, max_steps=1, lr=1e-9, init=res["model"]),
                  device="cpu", progress=False)
    a = load_checkpoint(pathlib.Path(res["model"]))["model"]
    b = load_checkpoint(pathlib.Path(res_b["model"]))["model"]
    for k in a:
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.allclose(a[k], b[k], atol=1e-6), k
    other = toy_morphable(seed=1)
    other_path = tmp_path / "other.npz"
    other.save(other_path)
    with pytest.raises(ValueError, match="init.*morphable model"):
        train(_cfg(tmp_path / "c", str(other_path), max_steps=1, init=res["model"]),
              device="cpu", progress=False)


def test_weights_refuse_another_morphable_model(toy, tmp_path):
    mm, path = toy
    res = train(_cfg(tmp_path / "r", path, max_steps=1), device="cpu", progress=False)
    other = toy_morphable(seed=1)
    with pytest.raises(ValueError, match="morphable model"):
        load_trained(res["model"], other)


def test_ddp_two_processes_gloo(toy, tmp_path):
    mm, path = toy
    cfg = {"out_dir": str(tmp_path / "ddp"), "data": [{"type": "rendered", "n": 16, "seed": 1}],
           "model": "mobilenet_v1_x0.5", "morphable": path, "loss": "vdc", "epochs": 1,
           "batch_size": 4, "workers": 0, "log_every": 1, "tensorboard": False}
    cfg_path = tmp_path / "ddp.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_port=29517", "-m", "pyface3d", "train", "3d", "--config",
                        str(cfg_path), "--device", "cpu", "--no-progress"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    # 16 samples over 2 ranks at batch 4: 2 steps per epoch
    ck = load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert ck["step"] == 2 and ck["epoch"] == 1
    assert (tmp_path / "ddp" / "model.pt").exists()
    rows = (tmp_path / "ddp" / "train_log.csv").read_text().splitlines()
    assert len(rows) == 3  # header + one row per step, written by rank 0 only


def test_validation_each_epoch_keeps_best(toy, tmp_path):
    mm, path = toy
    cfg = _cfg(tmp_path / "v", path, epochs=2, loss="vdc",
               val={"type": "rendered", "n": 4, "seed": 9, "cache": True})
    res = train(cfg, device="cpu", progress=False)
    assert res["steps"] == 4 and res["val_nme"] > 0
    rows = (tmp_path / "v" / "train_log.csv").read_text().splitlines()
    vals = [r for r in rows[1:] if r.split(",")[-1]]
    assert len(vals) == 2  # one validation row per epoch
    best = load_checkpoint(tmp_path / "v" / "best.pt")
    assert abs(best["val_nme"] - min(float(r.split(",")[-1]) for r in vals)) < 1e-6


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_stop_signals_write_a_checkpoint(toy, tmp_path, sig):
    """A run in the background (SIGINT ignored, as a shell starts background jobs) stopped by
    SIGTERM / SIGINT writes its checkpoint; rerunning resumes from it."""
    import json
    import signal
    import subprocess
    import sys
    import time
    _, mm_path = toy
    cfg = _cfg(tmp_path / "run", mm_path, epochs=100000, log_every=1).to_dict()
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "pyface3d", "train", "3d", "--config",
                          str(tmp_path / "c.json"), "--no-progress", "--device", "cpu"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    log = tmp_path / "run" / "train_log.csv"
    t0 = time.time()
    while time.time() - t0 < 120:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.2)
    p.send_signal(getattr(signal, sig))
    out = p.communicate(timeout=60)[0].decode()
    assert p.returncode != 0 and "checkpoint written" in out, out[-2000:]
    from pyface3d.train.trainer import load_checkpoint
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["step"] >= 2
