"""pyface3d.synth: sampler, labels, files, resume, CLI, dataset (toy model; ICT when shared)."""
import argparse
import json
import os
import pathlib

import cv2
import numpy as np
import pytest
import torch

from pyface3d import ops, render
from pyface3d.morphable import euler_angles
from pyface3d.synth import (LANDMARK_NAMES, SEG_LABELS, FaceSynthesizer, SynthConfig,
                            generate, read_landmarks, read_layout)
from pyface3d.synth import writer
from pyface3d.cli import main as cli_main
from pyface3d.synth.cli import add_parser
from pyface3d.synth.dataset import SynthDataset
from pyface3d.synth.regions import OCCLUDER, boundary_loops
from pyface3d.synth.synthesizer import visibility_tolerance
from tests.conftest import shared_dir
from tests.synth.toy import toy_face

CLEAN = dict(occlusion_p=0.0, blur_p=0.0, motion_blur_p=0.0, noise_p=0.0, jpeg_p=0.0)


@pytest.fixture(scope="module")
def toy():
    return toy_face()


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory, toy):
    p = tmp_path_factory.mktemp("model") / "toy.npz"
    toy.save(p)
    return str(p)


@pytest.fixture(scope="module")
def synth(toy):
    return FaceSynthesizer(toy, SynthConfig(size=64, seed=5))


def _files(root):
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _image_verts(model, params, size):
    v = model.reconstruct(torch.from_numpy(params)[None])[0].double()
    return torch.stack([v[:, 0] - 1, size - v[:, 1], v[:, 2]], 1)


# ---------------------------------------------------------------------- geometry, topology
def test_holes_are_closed_and_fills_follow_the_mesh(toy, synth):
    top = synth.topology
    assert set(top.filled) == {"right_eye", "left_eye", "mouth"}
    before = [lp for lp, closed in boundary_loops(toy.triangles.numpy()) if closed]
    after = [lp for lp, closed in boundary_loops(top.triangles) if closed]
    assert len(before) == 4 and len(after) == 1  # only the outer boundary is left open
    # the added vertices are exactly W V + offset A^T for any shape and pose
    params, _ = synth.sample_params(3)
    p = torch.from_numpy(params)[None]
    V = toy.reconstruct(p)
    A = p[:, :12].reshape(1, 3, 4)[:, :, :3]
    ext = top.extend(V, A)[0].double().numpy()
    Vn = V[0].double().numpy()
    ref = (Vn[top.extra_src] * top.extra_w[..., None]).sum(1) + top.extra_offset @ \
        A[0].double().numpy().T
    np.testing.assert_allclose(ext[toy.N:], ref, rtol=1e-5, atol=1e-3)
    # fill triangles are wound like their neighbours: every interior edge is used once in
    # each direction
    e = np.concatenate([top.triangles[:, [0, 1]], top.triangles[:, [1, 2]],
                        top.triangles[:, [2, 0]]])
    fwd = {tuple(x) for x in e.tolist()}
    assert len(fwd) == len(e)  # no directed edge twice
    assert top.vertex_label.max() < len(SEG_LABELS)


def test_params_are_3ddfa_crop_parameters(toy, synth):
    S = synth.config.size
    for i in range(6):
        s = synth.sample(i)
        lm = toy.reconstruct(torch.from_numpy(s.params)[None], landmarks_only=True)[0].numpy()
        img = np.stack([lm[:, 0] - 1, S - lm[:, 1], lm[:, 2]], 1)
        np.testing.assert_allclose(img, s.landmarks, atol=1e-3)
        yaw, pitch, roll = euler_angles(torch.from_numpy(s.params[:12]).double().reshape(
            1, 3, 4), degrees=True)
        if abs(s.factors["yaw"]) < 85:
            assert float(yaw) == pytest.approx(s.factors["yaw"], abs=1e-3)
            assert float(pitch) == pytest.approx(s.factors["pitch"], abs=1e-3)
            assert float(roll) == pytest.approx(s.factors["roll"], abs=1e-3)
        assert s.params.shape == (toy.num_params,) and s.params.dtype == np.float32


def test_same_seed_same_sample_other_seed_other_sample(toy, synth):
    a, b = synth.sample(4), FaceSynthesizer(toy, synth.config).sample(4)
    for k in ("rgb", "depth", "pncc", "normals", "albedo", "shading", "seg", "landmarks",
              "visible", "params", "sh"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert a.factors == b.factors
    c = FaceSynthesizer(toy, SynthConfig(size=64, seed=6)).sample(4)
    assert not np.array_equal(a.params, c.params)


def test_streams_are_independent(toy):
    """Changing one factor's range leaves the others' draws unchanged."""
    a = FaceSynthesizer(toy, SynthConfig(size=64, seed=1)).sample(2)
    b = FaceSynthesizer(toy, SynthConfig(size=64, seed=1, yaw=(-10, 10))).sample(2)
    np.testing.assert_array_equal(a.params[12:], b.params[12:])  # shape
    np.testing.assert_array_equal(a.sh, b.sh)                      # light
    assert a.factors["tone"] == b.factors["tone"]
    assert a.factors["yaw"] != b.factors["yaw"]


# ---------------------------------------------------------------------- label consistency
def _check_labels(model, s, size, topology):
    iv = _image_verts(model, s.params, size)
    ncc = ops.ncc_code(model.mean.double().reshape(-1, 3)).numpy()
    lm_ids = model.landmarks68.numpy()
    vis = s.self_visible
    j, i = np.rint(s.landmarks[:, 0]).astype(int), np.rint(s.landmarks[:, 1]).astype(int)
    # the PNCC where a visible landmark was drawn is its vertex's NCC code: at its nearest
    # pixel for nearly all, within one pixel for all (a landmark on the silhouette can
    # have its nearest pixel centre just past the edge, on a farther surface)
    code = ncc[lm_ids[vis]]
    err = np.abs(s.pncc[i[vis], j[vis]] - code).max(1)
    pad = np.pad(s.pncc, ((1, 1), (1, 1), (0, 0)))
    near = np.min([np.abs(pad[np.clip(i[vis] + 1 + di, 0, size + 1),
                              np.clip(j[vis] + 1 + dj, 0, size + 1)] - code).max(1)
                   for di in (-1, 0, 1) for dj in (-1, 0, 1)], 0)
    assert (err < 0.05).mean() >= 0.9 and near.max() < 0.15, (err, near)
    tol = visibility_tolerance(iv.numpy())
    assert s.mask[i[vis], j[vis]].all()
    # visible: the Z-buffer at the landmark's pixel is not nearer than its depth - tol
    assert np.all(s.depth[i[vis], j[vis]] <= s.landmarks[vis, 2] + tol + 1e-4)
    # visibility = an independent Z-buffer: the full-frame render_depth of the same
    # (hole-filled) mesh and render.vertex_visibility
    p = torch.from_numpy(s.params)[None]
    V = topology.extend(model.reconstruct(p), p[:, :12].reshape(1, 3, 4)[:, :, :3])[0]
    ivf = torch.stack([V[:, 0] - 1, size - V[:, 1], V[:, 2]], 1)
    depth, mask = render.render_depth(ivf[None], torch.from_numpy(topology.triangles).int(),
                                      size, size, backend="compiled")
    ref = render.vertex_visibility(ivf[lm_ids][None], depth[..., 0], mask, tol=tol)[0]
    np.testing.assert_array_equal(vis, ref.numpy())
    np.testing.assert_array_equal(s.depth, depth[0, ..., 0].numpy())
    # segmentation is the face mask plus occluders
    face = s.seg > 0
    assert np.array_equal(s.seg == OCCLUDER, s.occluder)
    assert np.array_equal(face & ~s.occluder, s.mask & ~s.occluder)
    assert set(np.unique(s.seg)) <= set(SEG_LABELS)
    assert np.array_equal(s.visible, s.self_visible & ~s.occluder[np.clip(i, 0, size - 1),
                                                                   np.clip(j, 0, size - 1)])


def test_label_consistency_toy(toy):
    syn = FaceSynthesizer(toy, SynthConfig(size=96, seed=2, occlusion_p=1.0))
    for k in range(6):
        _check_labels(toy, syn.sample(k), 96, syn.topology)


def test_frontal_face_shows_its_regions(toy):
    syn = FaceSynthesizer(toy, SynthConfig(size=96, seed=0, yaw=(0, 0), pitch=(0, 0),
                                           roll=(0, 0), **CLEAN))
    s = syn.sample(0)
    assert s.visible[17:].all()  # brows, nose, eyes, lips of a frontal face
    labels = set(np.unique(s.seg))
    assert {0, 1, 2, 3, 4, 5} <= labels
    assert s.seg[s.mask].min() >= 1 and (s.seg[~s.mask] == 0).all()


def test_rgb_is_albedo_times_shading(toy):
    syn = FaceSynthesizer(toy, SynthConfig(size=64, seed=3, **CLEAN))
    for k in range(3):
        s = syn.sample(k)
        face = np.clip(np.rint(np.clip(s.albedo * s.shading, 0, 1) * 255), 0, 255)
        diff = np.abs(face[s.mask] - s.rgb[s.mask].astype(np.float64))
        assert diff.max() <= 1.0
        np.testing.assert_allclose(np.linalg.norm(s.normals[s.mask], axis=1), 1, atol=1e-4)
        assert (s.normals[s.mask][:, 2] >= 0).all()


@pytest.mark.skipif(not (shared_dir() / "assets" / "ict-facekit").is_dir(),
                    reason="needs the ICT-FaceKit asset in $PYFACE3D_SHARED")
def test_label_consistency_ict():
    from pyface3d.morphable import resolve
    m = resolve("ict")
    syn = FaceSynthesizer(m, SynthConfig(size=120, seed=11, occlusion_p=0.5))
    assert set(syn.topology.filled) == {"right_eye", "left_eye", "mouth"}
    for k in range(4):
        _check_labels(m, syn.sample(k), 120, syn.topology)


# ---------------------------------------------------------------------- files
def test_generate_writes_layout_and_is_deterministic(tmp_path, toy):
    cfg = SynthConfig(size=48, seed=7, occlusion_p=0.5)
    r1 = generate(tmp_path / "a", 3, cfg, model=toy, progress=False)
    seen = []
    generate(tmp_path / "b", 3, cfg, model=toy, progress=False, callback=seen.append)
    assert seen == [0, 1, 2]
    assert r1["generated"] == 3 and r1["manifest_lines"] == 3
    fa, fb = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    for m in ("rgb", "depth", "pncc", "normals", "albedo", "shading", "seg"):
        assert f"{m}/000002.png" in fa
    lay = read_layout(tmp_path / "a")
    assert lay["model"]["sha256"] == toy.sha256() and lay["config"]["seed"] == 7
    lines = (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert [r["index"] for r in recs] == [0, 1, 2] and all(r["seed"] == 7 for r in recs)
    assert {"yaw", "pitch", "roll", "tone", "ambient", "lights", "background"} <= set(
        recs[0]["factors"])
    # the files decode to the sample
    s = FaceSynthesizer(toy, cfg).sample(1)
    rgb = cv2.imread(str(tmp_path / "a" / "rgb" / "000001.png"))[..., ::-1]
    np.testing.assert_array_equal(rgb, s.rgb)
    d16 = cv2.imread(str(tmp_path / "a" / "depth" / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert d16.dtype == np.uint16 and np.array_equal(d16 > 0, s.mask)
    q, off = lay["encodings"]["depth"]["depth_scale"], lay["encodings"]["depth"]["depth_offset"]
    np.testing.assert_allclose(d16[s.mask] / q - off, s.depth[s.mask], atol=0.5 / q + 1e-4)
    seg = cv2.imread(str(tmp_path / "a" / "seg" / "000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(seg, s.seg)
    names, vis, xy = read_landmarks(tmp_path / "a" / "landmarks" / "000001.txt")
    assert names == LANDMARK_NAMES and len(set(names)) == 68
    np.testing.assert_array_equal(vis, s.visible)
    np.testing.assert_allclose(xy, s.landmarks[:, :2], atol=5e-4)
    with np.load(tmp_path / "a" / "labels" / "000001.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["params"], s.params)
        np.testing.assert_array_equal(z["landmarks"], s.landmarks)
        np.testing.assert_array_equal(z["visible"], s.visible)


def test_workers_do_not_change_the_output(tmp_path, toy):
    cfg = SynthConfig(size=40, seed=3)
    generate(tmp_path / "w1", 5, cfg, model=toy, workers=1, progress=False)
    generate(tmp_path / "w2", 5, cfg, model=toy, workers=2, progress=False)
    f1, f2 = _files(tmp_path / "w1"), _files(tmp_path / "w2")
    assert f1.keys() == f2.keys()
    assert [k for k in f1 if f1[k] != f2[k]] == []


def test_resume_after_interrupt(tmp_path, toy, monkeypatch):
    cfg = SynthConfig(size=40, seed=9, modalities=("rgb", "seg"))
    generate(tmp_path / "fresh", 5, cfg, model=toy, progress=False)
    # interrupt in the middle of sample 2 (after some of its files were written)
    real = writer._atomic_write
    calls = {"n": 0}
    per_sample = 2 + 3  # rgb, seg, landmarks, labels, meta

    def flaky(path, data):
        calls["n"] += 1
        if calls["n"] == 2 + 2 * per_sample + 2:  # layout + README, 2 samples, 2 files
            raise KeyboardInterrupt
        real(path, data)

    monkeypatch.setattr(writer, "_atomic_write", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "run", 5, cfg, model=toy, progress=False)
    monkeypatch.setattr(writer, "_atomic_write", real)
    assert writer.is_complete(str(tmp_path / "run"), "000001", cfg)
    assert not writer.is_complete(str(tmp_path / "run"), "000002", cfg)
    assert len((tmp_path / "run" / "manifest.jsonl").read_text().splitlines()) == 2
    assert not list((tmp_path / "run").rglob("*.tmp*"))
    res = generate(tmp_path / "run", 5, cfg, model=toy, progress=False)
    assert res["skipped"] == 2 and res["generated"] == 3
    fa, fb = _files(tmp_path / "fresh"), _files(tmp_path / "run")
    assert fa.keys() == fb.keys() and [k for k in fa if fa[k] != fb[k]] == []
    # a damaged sample (record without its files) is redone; extending n adds samples
    os.remove(tmp_path / "run" / "rgb" / "000003.png")
    res = generate(tmp_path / "run", 6, cfg, model=toy, progress=False)
    assert res["generated"] == 2 and res["manifest_lines"] == 6
    assert (tmp_path / "run" / "rgb" / "000003.png").read_bytes() == \
        fa["rgb/000003.png"]


def test_other_configuration_in_the_same_folder_is_refused(tmp_path, toy):
    generate(tmp_path / "o", 1, SynthConfig(size=40, seed=1), model=toy, progress=False)
    with pytest.raises(ValueError, match="seed"):
        generate(tmp_path / "o", 1, SynthConfig(size=40, seed=2), model=toy, progress=False)
    other = toy_face(seed=1)
    with pytest.raises(ValueError, match="morphable model"):
        generate(tmp_path / "o", 1, SynthConfig(size=40, seed=1), model=other, progress=False)


def test_background_folder(tmp_path, toy):
    d = tmp_path / "bg"
    d.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        cv2.imwrite(str(d / f"img{k}.png"), rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    (d / "notes.txt").write_text("not an image")
    syn = FaceSynthesizer(toy, SynthConfig(size=40, backgrounds=str(d),
                                           background_image_p=1.0))
    kinds = {syn.sample(k).factors["background"]["file"] for k in range(6)}
    assert kinds <= {"img0.png", "img1.png"} and kinds
    with pytest.raises(FileNotFoundError, match="backgrounds"):
        FaceSynthesizer(toy, SynthConfig(backgrounds=str(tmp_path / "missing")))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no image"):
        FaceSynthesizer(toy, SynthConfig(backgrounds=str(empty)))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("kw,match", [
    (dict(size=8), "size"), (dict(size=64.5), "size"), (dict(seed=-1), "seed"),
    (dict(yaw=(10, -10)), "yaw"), (dict(yaw=(-100, 0)), "yaw"), (dict(pitch="x"), "pitch"),
    (dict(tone=(0, 5)), "tone"), (dict(roi_scale=(0.1, 1)), "roi_scale"),
    (dict(occlusion_p=1.5), "occlusion_p"), (dict(blur_p=0.8, motion_blur_p=0.5), "blur_p"),
    (dict(modalities=("rgb", "heat")), "modalities"), (dict(modalities=()), "modalities"),
    (dict(format="gif"), "format"), (dict(jpeg_quality=(0, 50)), "jpeg_quality"),
    (dict(ambient=(0, 3), light=(0, 3)), "ambient"), (dict(device="tpu"), "device"),
    (dict(max_occluders=0), "max_occluders"), (dict(id_scale=-1), "id_scale"),
])
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        SynthConfig(**kw)


def test_bad_arguments(tmp_path, toy, synth):
    for bad in (-1, 1.5, "3"):
        with pytest.raises(ValueError, match="index"):
            synth.sample(bad)
    with pytest.raises(ValueError, match="`n`"):
        generate(tmp_path / "x", -2, SynthConfig(), model=toy, progress=False)
    with pytest.raises(ValueError, match="workers"):
        generate(tmp_path / "x", 1, SynthConfig(), model=toy, workers=0, progress=False)
    with pytest.raises(TypeError, match="config"):
        FaceSynthesizer(toy, {"size": 64})
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        generate(tmp_path / "file", 1, SynthConfig(), model=toy, progress=False)
    with pytest.raises(FileNotFoundError):
        FaceSynthesizer(str(tmp_path / "nope.npz"))


# ---------------------------------------------------------------------- CLI
def test_cli_smoke(tmp_path, toy_path, capsys):
    out = tmp_path / "cli"
    rc = cli_main(["synth", "--n", "2", "--out", str(out), "--size", "40", "--seed", "4",
                   "--morphable", toy_path, "--yaw", "30", "--pitch=-5,5",
                   "--modalities", "rgb,depth,seg", "--format", "jpg", "--no-progress"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["generated"] == 2
    assert sorted(p.name for p in (out / "rgb").iterdir()) == ["000000.jpg", "000001.jpg"]
    assert not (out / "pncc").exists()
    lay = read_layout(out)
    assert lay["config"]["yaw"] == [-30.0, 30.0] and lay["config"]["pitch"] == [-5.0, 5.0]
    recs = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(abs(r["factors"]["yaw"]) <= 30 for r in recs)
    # rerun: nothing to do
    assert cli_main(["synth", "--n", "2", "--out", str(out), "--size", "40", "--seed", "4",
                     "--morphable", toy_path, "--yaw", "30", "--pitch=-5,5",
                     "--modalities", "rgb,depth,seg", "--format", "jpg",
                     "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 2


@pytest.mark.parametrize("argv,match", [
    (["--n", "0"], "--n"), (["--yaw", "abc"], "--yaw"), (["--yaw", "1,2,3"], "--yaw"),
    (["--modalities", "rgb,heat"], "--modalities"), (["--format", "gif"], "--format"),
    (["--workers", "0"], "--workers"), (["--roi-scale", "1"], "--roi-scale"),
])
def test_cli_bad_arguments(tmp_path, argv, match, capsys):
    base = ["synth", "--n", "1", "--out", str(tmp_path / "o")]
    args = base + argv if argv[0] != "--n" else ["synth", "--out", str(tmp_path / "o")] + argv
    with pytest.raises(SystemExit) as e:
        cli_main(args)
    assert e.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_reports_invalid_values(tmp_path, toy_path, capsys):
    rc = cli_main(["synth", "--n", "1", "--out", str(tmp_path / "o"), "--morphable", toy_path,
                   "--yaw=-120,0", "--no-progress"])
    assert rc == 2 and "yaw" in capsys.readouterr().err
    rc = cli_main(["synth", "--n", "1", "--out", str(tmp_path / "o"), "--morphable",
                   str(tmp_path / "missing.npz"), "--no-progress"])
    assert rc == 2 and "missing.npz" in capsys.readouterr().err


def test_add_parser_registers_synth():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    args = p.parse_args(["synth", "--n", "3", "--out", "x", "--yaw", "45"])
    assert args.fn.__name__ == "run" and args.yaw == (-45.0, 45.0) and args.size == 120


# ---------------------------------------------------------------------- dataset
def test_dataset_items(tmp_path, toy):
    from pyface3d.train import datasets as registry

    cfg = SynthConfig(size=120, seed=1)
    generate(tmp_path / "d", 3, cfg, model=toy, progress=False)
    ds = registry.build({"type": "synth", "root": str(tmp_path / "d"), "visibility": True}, toy)
    assert isinstance(ds, SynthDataset) and len(ds) == 3
    item = ds[1]
    assert item["image"].shape == (3, 120, 120) and item["image"].dtype == torch.float32
    s = FaceSynthesizer(toy, cfg).sample(1)
    bgr = torch.from_numpy(s.rgb[..., ::-1].copy()).permute(2, 0, 1).float()
    torch.testing.assert_close(item["image"], (bgr - 127.5) / 128.0)
    torch.testing.assert_close(item["params"], torch.from_numpy(s.params), atol=1e-3, rtol=1e-5)
    lm = toy.reconstruct(item["params"][None], landmarks_only=True)[0, :, :2]
    torch.testing.assert_close(item["landmarks"], lm, atol=1e-3, rtol=0)
    assert item["visible"].dtype == torch.bool and item["yaw"] == s.factors["yaw"]
    with pytest.raises(ValueError, match="sha256"):
        SynthDataset(tmp_path / "d", morphable=toy_face(seed=3))
    # another size: resampled to 120 with the parameters rescaled to match
    generate(tmp_path / "d64", 2, SynthConfig(size=64, seed=1), model=toy, progress=False)
    it = SynthDataset(tmp_path / "d64", morphable=toy)[0]
    assert it["image"].shape == (3, 120, 120)
    lm = toy.reconstruct(it["params"][None], landmarks_only=True)[0, :, :2]
    torch.testing.assert_close(it["landmarks"], lm, atol=1e-3, rtol=0)
    with pytest.raises(FileNotFoundError, match="layout.json"):
        SynthDataset(tmp_path)


@pytest.mark.cuda
def test_cuda_matches_cpu(toy):
    cfg = dict(size=64, seed=2, occlusion_p=0.5)
    a = FaceSynthesizer(toy, SynthConfig(**cfg)).sample(1)
    b = FaceSynthesizer(toy, SynthConfig(device="cuda", **cfg)).sample(1)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.seg, b.seg)
    np.testing.assert_array_equal(a.visible, b.visible)
    np.testing.assert_allclose(a.depth, b.depth, atol=1e-4)
    np.testing.assert_allclose(a.shading, b.shading, atol=1e-4)
    assert np.abs(a.rgb.astype(int) - b.rgb.astype(int)).max() <= 1
