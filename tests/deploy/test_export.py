"""ONNX export: the plain-torch head against the compiled op, exported graphs against torch
(ONNX Runtime), dynamic batch, fp16, weights files, graph cleanup, argument errors."""
import os
import warnings

import numpy as np
import onnx
import pytest
import torch

from pyface3d import models
from pyface3d.data.roi import crop_to_image
from pyface3d.deploy import (OrtRunner, ReconstructionHead, UntrainedWarning, export_onnx,
                             parse_head, simplify)
from pyface3d.deploy.export import build_deploy_module, metadata, reference_outputs

from .conftest import small_net

# ops a cleaned graph must not contain: shape bookkeeping and no-ops
BOOKKEEPING = {"Shape", "Gather", "Unsqueeze", "Constant", "Identity", "Cast", "Floor", "Div"}


def test_parse_head():
    assert parse_head("params") == ("params",)
    assert parse_head("landmarks") == ("params", "landmarks")
    assert parse_head("vertices+landmarks") == ("params", "landmarks", "vertices")
    assert parse_head("landmarks,vertices") == ("params", "landmarks", "vertices")
    assert parse_head(["vertices"]) == ("params", "vertices")
    with pytest.raises(ValueError, match="head"):
        parse_head("landmark")
    with pytest.raises(ValueError, match="head"):
        parse_head("")
    with pytest.raises(TypeError, match="head"):
        parse_head(3)


@pytest.mark.parametrize("frame", ["crop", "model"])
def test_head_matches_compiled_op(toy_mm, frame):
    g = torch.Generator().manual_seed(1)
    out = torch.randn(5, toy_mm.num_params, generator=g)
    head = ReconstructionHead(toy_mm, ("params", "landmarks", "vertices"), frame=frame)
    p, lm, v = head(out)
    params = toy_mm.unwhiten(out)
    torch.testing.assert_close(p, params)
    ref_v = toy_mm.reconstruct(params)
    ref_lm = toy_mm.reconstruct(params, landmarks_only=True)
    if frame == "crop":
        # the crop frame is pyface3d.data.roi's map with the full-crop ROI (scale 1)
        roi = np.tile([0.0, 0.0, 120.0, 120.0], (5, 1))
        ref_v = crop_to_image(ref_v.double(), roi).float()
        ref_lm = crop_to_image(ref_lm.double(), roi).float()
    scale = ref_v.abs().max()
    torch.testing.assert_close(v, ref_v, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(lm, ref_lm, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(lm, v[:, toy_mm.landmarks68], atol=1e-5 * scale, rtol=1e-5)


def test_head_rejects_bad_arguments(toy_mm):
    with pytest.raises(ValueError, match="frame"):
        ReconstructionHead(toy_mm, ("params",), frame="image")
    with pytest.raises(ValueError, match="crop_size"):
        ReconstructionHead(toy_mm, ("params",), crop_size=0)


@pytest.mark.parametrize("head", ["params", "landmarks", "vertices", "landmarks+vertices"])
def test_export_heads_verify(toy_mm, tmp_path, head):
    net = small_net(toy_mm)
    path = tmp_path / "m.onnx"
    res = export_onnx(net, path, head=head, morphable=toy_mm, verify=True)
    names = parse_head(head)
    assert list(res.outputs) == list(names)
    assert res.outputs["params"] == ["batch", toy_mm.num_params]
    if "landmarks" in names:
        assert res.outputs["landmarks"] == ["batch", 68, 3]
    if "vertices" in names:
        assert res.outputs["vertices"] == ["batch", toy_mm.N, 3]
    assert set(res.verify) == set(names)
    for n, r in res.verify.items():
        assert r["max_abs_ref"] > 1.0, n          # real numbers were compared
        assert r["max_abs_diff"] < 1e-3 * r["max_abs_ref"], (n, r)
    assert not BOOKKEEPING & set(res.op_counts), res.op_counts
    assert res.nodes_before_simplify > sum(res.op_counts.values())
    meta = metadata(path)
    assert meta["pyface3d.head"] == "+".join(names)
    assert meta["pyface3d.morphable_sha256"] == toy_mm.sha256()
    assert meta["pyface3d.trained"] == "true"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp.onnx")]


def test_dynamic_batch_and_crop_frame(toy_mm, tmp_path):
    net = small_net(toy_mm)
    path = tmp_path / "lm.onnx"
    export_onnx(net, path, head="landmarks", morphable=toy_mm)
    module = build_deploy_module(net, toy_mm, "landmarks")
    runner = OrtRunner(path, threads=1)
    assert runner.input_shape == ["batch", 3, 120, 120]
    g = torch.Generator().manual_seed(3)
    for b in (1, 2, 7):
        x = torch.randn(b, 3, 120, 120, generator=g)
        got = runner.run(x)                     # torch in -> torch out
        assert isinstance(got["landmarks"], torch.Tensor)
        ref = reference_outputs(module, x, toy_mm)
        np.testing.assert_allclose(got["landmarks"].numpy(), ref["landmarks"],
                                   atol=1e-3, rtol=1e-4)
    # the landmarks of the mean face sit inside the crop, y down: the chin (8) below the
    # nose tip (30), the face's right eye corner (36) left of its left one (45)
    lm = runner.run(np.zeros((1, 3, 120, 120), np.float32))["landmarks"][0]
    assert lm[8, 1] > lm[30, 1]
    assert lm[36, 0] < lm[45, 0]
    assert (lm[:, :2] > 0).all() and (lm[:, :2] < 120).all()


def test_fp16_export(toy_mm, tmp_path):
    net = small_net(toy_mm)
    res = export_onnx(net, tmp_path / "h.onnx", head="landmarks", morphable=toy_mm, fp16=True,
                      verify=True)
    m = onnx.load(tmp_path / "h.onnx")
    types = {t.data_type for t in m.graph.initializer if len(t.dims) == 4}
    assert types == {onnx.TensorProto.FLOAT16}            # conv weights in half
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in m.graph.output)
    assert res.op_counts["Cast"] == 2                     # in and out of the half network
    assert res.verify["landmarks"]["max_abs_diff"] < 0.05 * res.verify["landmarks"]["max_abs_ref"]
    assert metadata(tmp_path / "h.onnx")["pyface3d.fp16"] == "true"


def test_static_batch_and_opsets(toy_mm, tmp_path):
    net = small_net(toy_mm)
    res = export_onnx(net, tmp_path / "s.onnx", morphable=toy_mm, dynamic_batch=False,
                      opset=20)
    assert res.outputs["params"] == [1, toy_mm.num_params]
    m = onnx.load(tmp_path / "s.onnx")
    assert [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")] == [20]
    for bad in (16, 21, "17", True):
        with pytest.raises(ValueError, match="opset"):
            export_onnx(net, tmp_path / "x.onnx", morphable=toy_mm, opset=bad)
    with pytest.raises(ValueError, match="onnx"):
        export_onnx(net, tmp_path / "x.pt", morphable=toy_mm)
    with pytest.raises(ValueError, match="frame"):
        export_onnx(net, tmp_path / "x.onnx", morphable=toy_mm, frame="image")


def test_registry_name_warns_untrained(toy_mm_path, tmp_path):
    with pytest.warns(UntrainedWarning, match="UNTRAINED"):
        res = export_onnx("mobilenet_v1_x0.5", tmp_path / "r.onnx", morphable=str(toy_mm_path))
    assert res.trained is False and res.model_name == "mobilenet_v1_x0.5"
    assert metadata(tmp_path / "r.onnx")["pyface3d.trained"] == "false"
    with pytest.raises(ValueError, match="neither an existing file"):
        export_onnx("no_such_net", tmp_path / "r.onnx", morphable=str(toy_mm_path))


def test_export_from_trained_weights(toy_mm, toy_mm_path, tmp_path):
    from pyface3d.train.trainer import CHECKPOINT_VERSION, save_checkpoint

    net = small_net(toy_mm)
    ck = tmp_path / "model.pt"
    save_checkpoint(ck, {"version": CHECKPOINT_VERSION, "model": net.state_dict(),
                         "model_name": "mobilenet_v1_x0.5", "model_kwargs": {},
                         "num_params": toy_mm.num_params,
                         "morphable_sha256": toy_mm.sha256(), "config": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UntrainedWarning)
        res = export_onnx(str(ck), tmp_path / "w.onnx", head="landmarks",
                          morphable=str(toy_mm_path), verify=True)
    assert res.trained is True
    # the exported file computes what the weights compute
    x = torch.randn(2, 3, 120, 120)
    with torch.no_grad():
        want = toy_mm.unwhiten(net.eval()(x)).numpy()
    got = OrtRunner(tmp_path / "w.onnx", threads=1).run(x.numpy())["params"]
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)
    # weights of another morphable model are refused
    from tests.train.toy_model import toy_morphable

    other = toy_morphable(seed=1)
    with pytest.raises(ValueError, match="morphable"):
        export_onnx(str(ck), tmp_path / "o.onnx", morphable=other)


def test_caller_network_untouched(toy_mm, tmp_path):
    net = small_net(toy_mm)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "f.onnx", morphable=toy_mm, fp16=True)
    after = net.state_dict()
    assert all(after[k].dtype == before[k].dtype and torch.equal(after[k], before[k])
               for k in before)


def test_simplify_folds_shape_chains(tmp_path):
    """A hand-made graph with the TorchScript exporter's patterns: Identity, Constant,
    a no-op Cast and a Reshape target computed from Shape/Gather/Concat."""
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 36])
    c = lambda n, v: helper.make_node("Constant", [], [n], value=numpy_helper.from_array(
        np.array(v, np.int64), n))
    nodes = [
        helper.make_node("Identity", ["x"], ["xi"]),
        helper.make_node("Cast", ["xi"], ["xc"], to=TensorProto.FLOAT),
        helper.make_node("Shape", ["xc"], ["s"]),
        c("i0", 0), c("i1", 1),
        helper.make_node("Gather", ["s", "i0"], ["b"]),
        helper.make_node("Gather", ["s", "i1"], ["ch"]),
        c("nine", [9]), c("ax", [0]),
        helper.make_node("Unsqueeze", ["b", "ax"], ["bu"]),
        helper.make_node("Unsqueeze", ["ch", "ax"], ["chu"]),
        helper.make_node("Mul", ["chu", "nine"], ["flat"]),
        helper.make_node("Concat", ["bu", "flat"], ["shape"], axis=0),
        helper.make_node("Reshape", ["xc", "shape"], ["y"]),
    ]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    s = simplify(m)
    assert [n.op_type for n in s.graph.node] == ["Reshape"]
    shape = {t.name: numpy_helper.to_array(t) for t in s.graph.initializer}
    assert [v.tolist() for v in shape.values()] == [[0, 36]]
    onnx.save(m, tmp_path / "a.onnx")
    onnx.save(s, tmp_path / "b.onnx")
    xv = np.random.default_rng(0).standard_normal((5, 4, 3, 3)).astype(np.float32)
    a = OrtRunner(tmp_path / "a.onnx", threads=1).run(xv)["y"]
    b = OrtRunner(tmp_path / "b.onnx", threads=1).run(xv)["y"]
    np.testing.assert_array_equal(a, b)


def test_ort_runner_checks_input(toy_mm, tmp_path):
    net = small_net(toy_mm)
    export_onnx(net, tmp_path / "c.onnx", morphable=toy_mm)
    r = OrtRunner(tmp_path / "c.onnx", providers="auto", threads=1)
    assert r.providers[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="shape"):
        r.run(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(TypeError, match="float32"):
        r.run(np.zeros((1, 3, 120, 120), np.float64))
    with pytest.raises(ValueError, match="empty"):
        r.run(np.zeros((0, 3, 120, 120), np.float32))
    with pytest.raises(TypeError, match="numpy array or a torch"):
        r.run([0.0])
    with pytest.raises(ValueError, match="threads"):
        OrtRunner(tmp_path / "c.onnx", threads=0)
    with pytest.raises(ValueError, match="providers"):
        OrtRunner(tmp_path / "c.onnx", providers=["NoSuchExecutionProvider"])
    with pytest.raises(FileNotFoundError):
        OrtRunner(tmp_path / "missing.onnx")


@pytest.mark.slow
def test_ict_thesis_net_all_heads(tmp_path):
    """shufflenet3d with the default ICT model (needs ../shared or the cached model)."""
    from tests.conftest import shared_dir

    if not (shared_dir() / "assets").is_dir():
        pytest.skip("needs the shared assets (PYFACE3D_SHARED)")
    from pyface3d.deploy import calibrate_batchnorm

    net = calibrate_batchnorm(models.create("shufflenet3d", seed=0))
    res = export_onnx(net, tmp_path / "t.onnx", head="landmarks+vertices", verify=True)
    assert res.outputs["vertices"][1] == 9409
    assert res.verify["landmarks"]["max_abs_diff"] < 1e-3


def test_network_and_morphable_must_match(toy_mm, tmp_path):
    net = models.create("mobilenet_v1_x0.5", num_params=62, seed=0)   # toy model has 24
    with pytest.raises(ValueError, match="outputs 62 parameters"):
        export_onnx(net, tmp_path / "m.onnx", morphable=toy_mm)
