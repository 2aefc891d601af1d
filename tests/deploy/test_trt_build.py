"""Everything around TensorRT that runs without it: cache keys, the engine cache directory,
calibration batches, profiles, precision resolution; plus the real-engine tests, which skip
here."""
import hashlib
import json
import os
import threading

import cv2
import numpy as np
import pytest
import torch

from pyface3d.deploy import export_onnx
from pyface3d.deploy.trt_build import (TENSORRT_UNAVAILABLE_REASON, BatchProfile,
                                       CalibrationBatches, EngineCache, build_engine_cached,
                                       engine_cache_key, onnx_input_info, parse_batch_profile,
                                       require_tensorrt, resolve_precision, validate_profile)

from .conftest import small_net

SHA = hashlib.sha256(b"model").hexdigest()
GPU = {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
SHAPES = [(1, 3, 120, 120), (8, 3, 120, 120), (64, 3, 120, 120)]
KEY_ARGS = dict(onnx_sha256=SHA, tensorrt="10.1.0", gpu_name=GPU["name"],
                compute_capability="9.0", precision="fp16", input_name="crops",
                profile_shapes=SHAPES, options={"strongly_typed": False})


def _has_tensorrt():
    try:
        require_tensorrt()
    except ImportError:
        return False
    return torch.cuda.is_available()


needs_tensorrt = pytest.mark.skipif(not _has_tensorrt(), reason=TENSORRT_UNAVAILABLE_REASON)


# ---------------------------------------------------------------------------- cache key
def test_cache_key_stable():
    k1, comp = engine_cache_key(**KEY_ARGS)
    k2, _ = engine_cache_key(**dict(KEY_ARGS, options={"strongly_typed": False}))
    assert k1 == k2 and len(k1) == 64
    assert comp["profile"] == {"input": "crops", "min": [1, 3, 120, 120],
                               "opt": [8, 3, 120, 120], "max": [64, 3, 120, 120]}
    # the key is the sha256 of the canonical JSON of the components (documented)
    canon = json.dumps(comp, sort_keys=True, separators=(",", ":"))
    assert k1 == hashlib.sha256(canon.encode()).hexdigest()
    # tuples vs lists and the upper-case sha do not change it
    k3, _ = engine_cache_key(**dict(KEY_ARGS, onnx_sha256=SHA.upper(),
                                    profile_shapes=[list(s) for s in SHAPES]))
    assert k3 == k1


@pytest.mark.parametrize("field,value", [
    ("onnx_sha256", hashlib.sha256(b"other").hexdigest()),
    ("tensorrt", "10.1.1"),
    ("gpu_name", "NVIDIA H200"),
    ("compute_capability", "8.9"),
    ("precision", "int8-qdq"),
    ("input_name", "input"),
    ("profile_shapes", [(1, 3, 120, 120), (1, 3, 120, 120), (64, 3, 120, 120)]),
    ("profile_shapes", [(2, 3, 120, 120), (8, 3, 120, 120), (64, 3, 120, 120)]),
    ("profile_shapes", [(1, 3, 120, 120), (8, 3, 120, 120), (32, 3, 120, 120)]),
    ("options", {"strongly_typed": True}),
])
def test_cache_key_changes_with_each_component(field, value):
    assert engine_cache_key(**dict(KEY_ARGS, **{field: value}))[0] != \
        engine_cache_key(**KEY_ARGS)[0]


def test_cache_key_rejects_bad_components():
    with pytest.raises(ValueError, match="onnx_sha256"):
        engine_cache_key(**dict(KEY_ARGS, onnx_sha256="abc"))
    with pytest.raises(ValueError, match="gpu_name"):
        engine_cache_key(**dict(KEY_ARGS, gpu_name=""))
    with pytest.raises(ValueError, match="profile_shapes"):
        engine_cache_key(**dict(KEY_ARGS, profile_shapes=SHAPES[:2]))
    with pytest.raises(ValueError, match="options"):
        engine_cache_key(**dict(KEY_ARGS, options={"x": object()}))


# ---------------------------------------------------------------------------- engine cache
def _key(i):
    return engine_cache_key(**dict(KEY_ARGS, precision=f"p{i}"))


def test_cache_miss_put_hit(tmp_path):
    cache = EngineCache(tmp_path / "c")
    key, comp = _key(0)
    assert cache.get(key) is None
    path = cache.put(key, b"engine-bytes-0", comp)
    assert path.read_bytes() == b"engine-bytes-0"
    assert cache.get(key) == b"engine-bytes-0"
    e = cache.entries()[key]
    assert e["size"] == 14 and e["components"] == comp
    assert e["sha256"] == hashlib.sha256(b"engine-bytes-0").hexdigest()
    idx = json.loads((tmp_path / "c" / "index.json").read_text())
    assert idx["format"] == "pyface3d-trt-engine-cache" and key in idx["entries"]
    # a second EngineCache on the same folder sees it
    assert EngineCache(tmp_path / "c").get(key) == b"engine-bytes-0"
    assert cache.remove(key) and cache.get(key) is None and not path.exists()
    with pytest.raises(ValueError, match="key"):
        cache.get("not-a-key")
    with pytest.raises(ValueError, match="data"):
        cache.put(key, b"", comp)


def test_get_or_build_calls_builder_once(tmp_path):
    cache = EngineCache(tmp_path)
    calls = []

    def build():
        calls.append(1)
        return b"plan"

    key, comp = _key(1)
    assert cache.get_or_build(key, comp, build) == (b"plan", False)
    assert cache.get_or_build(key, comp, build) == (b"plan", True)
    assert len(calls) == 1


def test_corrupt_engine_is_dropped_and_rebuilt(tmp_path):
    cache = EngineCache(tmp_path)
    key, comp = _key(2)
    cache.put(key, b"good-engine", comp)
    cache.path(key).write_bytes(b"bad-engine!")         # same size, other bytes
    with pytest.warns(RuntimeWarning, match="corrupt"):
        assert cache.get(key) is None
    assert key not in cache.entries() and not cache.path(key).exists()
    assert cache.get_or_build(key, comp, lambda: b"good-engine") == (b"good-engine", False)
    cache.path(key).unlink()                             # engine file gone
    with pytest.warns(RuntimeWarning, match="missing"):
        assert cache.get(key) is None


@pytest.mark.parametrize("garbage", [b"{not json", b"[]", b'{"format": "other"}',
                                     b'{"format": "pyface3d-trt-engine-cache", "version": 1, '
                                     b'"entries": {"zz": {}}}'])
def test_corrupt_index_is_rebuilt_from_sidecars(tmp_path, garbage):
    cache = EngineCache(tmp_path)
    keys = [_key(i) for i in range(3)]
    for i, (k, comp) in enumerate(keys):
        cache.put(k, f"engine-{i}".encode(), comp)
    (tmp_path / "index.json").write_bytes(garbage)
    fresh = EngineCache(tmp_path)
    with pytest.warns(RuntimeWarning, match="rebuilt"):
        entries = fresh.entries()
    assert set(entries) == {k for k, _ in keys} and fresh.recovered
    assert fresh.get(keys[1][0]) == b"engine-1"
    # the index was rewritten and is valid again
    assert set(json.loads((tmp_path / "index.json").read_text())["entries"]) == set(entries)


def test_missing_index_is_rebuilt_silently(tmp_path):
    cache = EngineCache(tmp_path)
    k, comp = _key(5)
    cache.put(k, b"e5", comp)
    (tmp_path / "index.json").unlink()
    assert EngineCache(tmp_path).get(k) == b"e5"


def test_put_is_atomic_when_interrupted(tmp_path, monkeypatch):
    cache = EngineCache(tmp_path)
    k0, c0 = _key(0)
    cache.put(k0, b"old", c0)
    before = sorted(os.listdir(tmp_path))
    k1, c1 = _key(1)
    real_replace = os.replace

    def boom(src, dst):
        if str(dst).endswith(".engine"):
            raise KeyboardInterrupt("interrupted while writing the engine")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        cache.put(k1, b"new-engine", c1)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(os.listdir(tmp_path)) == before          # no partial or temp files
    assert cache.get(k1) is None and cache.get(k0) == b"old"


def test_concurrent_puts_keep_every_entry(tmp_path):
    cache = EngineCache(tmp_path)
    keys = [_key(i) for i in range(8)]

    def put(i):
        EngineCache(tmp_path).put(keys[i][0], f"e{i}".encode(), keys[i][1])

    threads = [threading.Thread(target=put, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(cache.entries()) == {k for k, _ in keys}


def test_cache_dir_must_be_a_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="cache-dir"):
        EngineCache(f)


# ---------------------------------------------------------------------------- profiles
def test_parse_batch_profile():
    assert parse_batch_profile("1,8,64") == BatchProfile(1, 8, 64)
    assert parse_batch_profile(" 4 ") == BatchProfile(4, 4, 4)
    assert parse_batch_profile([2, 2, 3]) == BatchProfile(2, 2, 3)
    assert BatchProfile(1, 8, 64).shapes((3, 120, 120)) == tuple(SHAPES)
    assert str(BatchProfile(1, 8, 64)) == "1,8,64"
    for bad in ("8,1,64", "1,8", "a,b,c", "0,1,2", "1,2,3,4", "", "1.5,2,3"):
        with pytest.raises(ValueError, match="--batch"):
            parse_batch_profile(bad)


def test_validate_profile():
    validate_profile(BatchProfile(1, 8, 64), ["batch", 3, 120, 120])
    validate_profile(BatchProfile(1, 1, 1), [1, 3, 120, 120])
    with pytest.raises(ValueError, match="static batch 1"):
        validate_profile(BatchProfile(1, 8, 64), [1, 3, 120, 120])
    with pytest.raises(ValueError, match="static C, H, W"):
        validate_profile(BatchProfile(1, 1, 1), ["batch", 3, "h", "w"])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        validate_profile(BatchProfile(1, 1, 1), ["batch", 62])


# ---------------------------------------------------------------------------- calibration
def _write_crops(d, n, size=120, seed=0):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    imgs = []
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(d / f"crop{i:03d}.png"), img)
        imgs.append(img)
    return imgs


def test_calibration_batches_from_images_and_npy(tmp_path):
    imgs = _write_crops(tmp_path / "c", 5)
    extra = np.random.default_rng(1).standard_normal((4, 3, 120, 120)).astype(np.float32)
    np.save(tmp_path / "c" / "zz_more.npy", extra)           # sorted after the pngs
    cb = CalibrationBatches(tmp_path / "c", batch_size=4)
    assert (cb.num_crops, len(cb), cb.left_out) == (9, 2, 1)
    assert "1 crops left out" in cb.describe()
    batches = list(cb)
    assert [b.shape for b in batches] == [(4, 3, 120, 120)] * 2
    assert all(b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    # BGR kept (cv2 order), CHW, (x - 127.5) / 128
    want0 = (imgs[0].astype(np.float32) - 127.5) / 128.0
    np.testing.assert_allclose(batches[0][0], want0.transpose(2, 0, 1))
    np.testing.assert_array_equal(batches[1][1:], extra[:3])
    # max_batches
    cb1 = CalibrationBatches(tmp_path / "c", batch_size=4, max_batches=1)
    assert len(list(cb1)) == 1 and cb1.left_out == 5
    # fingerprint: stable, and changes with the content and with the batching
    f = cb.fingerprint()
    assert f == CalibrationBatches(tmp_path / "c", batch_size=4).fingerprint()
    assert f != cb1.fingerprint()
    cv2.imwrite(str(tmp_path / "c" / "crop000.png"), imgs[1])
    assert CalibrationBatches(tmp_path / "c", batch_size=4).fingerprint() != f


def test_calibration_batches_from_array_and_errors(tmp_path):
    a = np.zeros((10, 3, 120, 120), np.float32)
    cb = CalibrationBatches(a, batch_size=3)
    assert len(list(cb)) == 3 and cb.left_out == 1
    with pytest.raises(ValueError, match="float32"):
        CalibrationBatches(a.astype(np.float64), batch_size=3)
    with pytest.raises(ValueError, match="do not fill one batch"):
        CalibrationBatches(a[:2], batch_size=3)
    with pytest.raises(ValueError, match="batch_size"):
        CalibrationBatches(a, batch_size=0)
    with pytest.raises(ValueError, match="max_batches"):
        CalibrationBatches(a, batch_size=1, max_batches=0)
    with pytest.raises(ValueError, match="not a directory"):
        CalibrationBatches(tmp_path / "nope", batch_size=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no crops"):
        CalibrationBatches(tmp_path / "empty", batch_size=1)
    _write_crops(tmp_path / "small", 2, size=64)
    cb = CalibrationBatches(tmp_path / "small", batch_size=1)
    with pytest.raises(ValueError, match="expected 120x120"):
        list(cb)
    np.save(tmp_path / "small" / "bad.npy", np.zeros((2, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="bad.npy"):
        list(CalibrationBatches(tmp_path / "small", batch_size=1))


# ---------------------------------------------------------------------------- precision
def test_resolve_precision():
    cb = CalibrationBatches(np.zeros((4, 3, 120, 120), np.float32), batch_size=2)
    assert resolve_precision("fp32", False, None, False) == ("fp32", {"strongly_typed": False})
    assert resolve_precision("fp16", False, None, True) == ("fp16", {"strongly_typed": True})
    assert resolve_precision("int8", True, None, False)[0] == "int8-qdq"
    assert resolve_precision("int8", False, cb, False)[0] == f"int8-calib:{cb.fingerprint()}"
    with pytest.raises(ValueError, match="--calib"):
        resolve_precision("int8", False, None, False)
    with pytest.raises(ValueError, match="only used with --int8"):
        resolve_precision("fp16", False, cb, False)
    with pytest.raises(ValueError, match="already holds Q/DQ"):
        resolve_precision("int8", True, cb, False)
    with pytest.raises(ValueError, match="exported with --fp16"):
        resolve_precision("fp32", False, None, True)
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("bf16", False, None, False)


# ---------------------------------------------------------------------------- cached build
@pytest.fixture(scope="module")
def lm_onnx(toy_mm, tmp_path_factory):
    p = tmp_path_factory.mktemp("onnx") / "lm.onnx"
    export_onnx(small_net(toy_mm), p, head="landmarks", morphable=toy_mm)
    return p


def test_build_engine_cached_with_fake_builder(lm_onnx, tmp_path):
    calls = []

    def fake_build(onnx_path, **kw):
        calls.append(kw)
        return b"plan:" + str(kw["profile"]).encode() + kw["precision"].encode()

    kw = dict(builder=fake_build, tensorrt_version_str="10.1.0", gpu=GPU)
    name, dims, qdq = onnx_input_info(lm_onnx)
    assert (name, dims, qdq) == ("crops", ["batch", 3, 120, 120], False)
    d1, hit, k1 = build_engine_cached(lm_onnx, tmp_path, "fp16", BatchProfile(1, 8, 64), **kw)
    assert not hit and d1 == b"plan:1,8,64fp16"
    d2, hit, k2 = build_engine_cached(lm_onnx, tmp_path, "fp16", BatchProfile(1, 8, 64), **kw)
    assert hit and d2 == d1 and k2 == k1 and len(calls) == 1
    # the timing cache is one file per TensorRT version and compute capability
    assert calls[0]["timing_cache"] == tmp_path / "timing-10.1.0-9.0.cache"
    # another profile, precision, TensorRT or GPU: another engine
    _, hit, k3 = build_engine_cached(lm_onnx, tmp_path, "fp16", BatchProfile(1, 1, 64), **kw)
    assert not hit and k3 != k1
    _, hit, k4 = build_engine_cached(lm_onnx, tmp_path, "fp32", BatchProfile(1, 8, 64), **kw)
    assert not hit and k4 != k1
    _, hit, _ = build_engine_cached(lm_onnx, tmp_path, "fp16", BatchProfile(1, 8, 64),
                                    builder=fake_build, tensorrt_version_str="10.2.0", gpu=GPU)
    assert not hit
    _, hit, _ = build_engine_cached(lm_onnx, tmp_path, "fp16", BatchProfile(1, 8, 64),
                                    builder=fake_build, tensorrt_version_str="10.1.0",
                                    gpu={"name": "NVIDIA L4", "compute_capability": "8.9"})
    assert not hit and len(calls) == 5
    entries = EngineCache(tmp_path).entries()
    assert len(entries) == 5 and entries[k1]["components"]["precision"] == "fp16"
    # int8 with calibration crops: the calibration set is part of the key
    cb = CalibrationBatches(np.zeros((16, 3, 120, 120), np.float32), batch_size=8)
    _, hit, k5 = build_engine_cached(lm_onnx, tmp_path, "int8", BatchProfile(1, 8, 64),
                                     calibration=cb, **kw)
    assert not hit and calls[-1]["calibration"] is cb
    assert calls[-1]["calibration_cache"] == tmp_path / f"calib-{k5}.cache"
    assert EngineCache(tmp_path).entries()[k5]["components"]["precision"].startswith(
        "int8-calib:")
    with pytest.raises(ValueError, match="static batch|--calib"):
        build_engine_cached(lm_onnx, tmp_path, "int8", BatchProfile(1, 8, 64), **kw)


def test_require_tensorrt_message():
    if _has_tensorrt():
        pytest.skip("TensorRT is installed here")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorrt"):
            require_tensorrt()
    else:
        pytest.skip("tensorrt imports but no CUDA device")


def test_runners_need_tensorrt(tmp_path):
    if _has_tensorrt():
        pytest.skip("TensorRT is installed here")
    from pyface3d.deploy.trt_runtime import PycudaRunner, TrtRunner

    for cls in (TrtRunner, PycudaRunner):
        with pytest.raises((ImportError, RuntimeError)):
            cls(b"not-an-engine")


# ---------------------------------------------------------------------------- real engines
@needs_tensorrt
@pytest.mark.cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_real_engine_matches_onnxruntime(lm_onnx, tmp_path, precision):
    from pyface3d.deploy import OrtRunner
    from pyface3d.deploy.trt_runtime import TrtRunner

    data, hit, _ = build_engine_cached(lm_onnx, tmp_path, precision, BatchProfile(1, 4, 8))
    assert not hit
    r = TrtRunner(data)
    x = torch.randn(3, 3, 120, 120, device="cuda")
    out = r.run(x)
    torch.cuda.synchronize()
    ref = OrtRunner(lm_onnx, providers=["CPUExecutionProvider"]).run(x.cpu().numpy())
    tol = 1e-2 if precision == "fp32" else 0.5
    np.testing.assert_allclose(out["landmarks"].cpu().numpy(), ref["landmarks"], atol=tol)
    r.capture(1)
    g = r.run(x[:1])
    np.testing.assert_allclose(g["landmarks"].cpu().numpy(), ref["landmarks"][:1], atol=tol)
    assert build_engine_cached(lm_onnx, tmp_path, precision, BatchProfile(1, 4, 8))[1]


@needs_tensorrt
@pytest.mark.cuda
def test_real_engine_pycuda_runner(lm_onnx, tmp_path):
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from pyface3d.deploy import OrtRunner
    from pyface3d.deploy.trt_runtime import PycudaRunner

    data, _, _ = build_engine_cached(lm_onnx, tmp_path, "fp32", BatchProfile(1, 2, 4))
    r = PycudaRunner(data)
    x = np.random.default_rng(0).standard_normal((2, 3, 120, 120)).astype(np.float32)
    ref = OrtRunner(lm_onnx, providers=["CPUExecutionProvider"]).run(x)
    np.testing.assert_allclose(r.run(x)["landmarks"], ref["landmarks"], atol=1e-2)
    r.close()


def test_head_layers_pinned_to_fp32(lm_onnx):
    """The exporter names the head's nodes `/head/...` and nothing else; pin_head_fp32 pins
    exactly those layers' precision and float outputs (a fake network stands in for
    TensorRT's INetworkDefinition, whose layers the ONNX parser names after the nodes)."""
    import types

    import onnx

    from pyface3d.deploy.trt_build import HEAD_SCOPE, pin_head_fp32

    names = [n.name for n in onnx.load(lm_onnx).graph.node]
    head = [n for n in names if HEAD_SCOPE in n]
    assert head and all(n.startswith(HEAD_SCOPE) for n in head)
    assert any(n.endswith("MatMul") for n in head)
    assert not any(HEAD_SCOPE in n for n in names if n.startswith("/net/"))

    fake_trt = types.SimpleNamespace(float32="f32", float16="f16", int64="i64")

    class Layer:
        def __init__(self, name, out_dtypes):
            self.name, self.precision, self.outs = name, "f16", list(out_dtypes)
            self.num_outputs = len(out_dtypes)

        def get_output(self, j):
            return types.SimpleNamespace(dtype=self.outs[j])

        def set_output_type(self, j, t):
            self.outs[j] = t

    layers = [Layer(n, ["f16"]) for n in names] + [Layer("/head/Shape_x", ["i64"])]
    net = types.SimpleNamespace(num_layers=len(layers), get_layer=lambda i: layers[i])
    assert pin_head_fp32(fake_trt, net) == len(head) + 1
    for layer in layers:
        pinned = HEAD_SCOPE in layer.name
        assert layer.precision == ("f32" if pinned else "f16")
        if layer.name != "/head/Shape_x":
            assert layer.outs == (["f32"] if pinned else ["f16"])
    assert layers[-1].outs == ["i64"]            # non-float outputs keep their type


def test_calibration_batches_are_views_of_an_array():
    """Batches of an in-memory set are slices (no quadratic re-concatenation)."""
    a = np.random.default_rng(0).standard_normal((7, 3, 120, 120)).astype(np.float32)
    batches = list(CalibrationBatches(a, batch_size=2))
    assert len(batches) == 3 and all(np.shares_memory(b, a) for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), a[:6])
