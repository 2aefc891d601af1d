"""Every operator of every exported graph is on TensorRT 10's ONNX operator list
(pyface3d/deploy/trt_onnx_ops.json, transcribed from onnx-tensorrt's docs/operators.md)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pyface3d import models
from pyface3d.deploy import export_onnx, load_trt_op_table, unsupported_ops

from .conftest import small_net

HEADS = ["params", "landmarks", "vertices", "landmarks+vertices"]
# quick to export here; the ShuffleNet variants take several seconds each (slow)
QUICK = ["shufflenet3d", "mobilenet_v1", "mobilenet_v1_x0.5", "mobilenet_v2"]
SLOW = [m for m in models.list_models() if m not in QUICK]


def test_table_is_attributed_data():
    t = load_trt_op_table()
    assert t["tensorrt_version"].startswith("10.")
    assert "onnx-tensorrt" in t["source"] and "operators.md" in t["source"]
    assert len(t["source_commit"]) == 40 and "Apache-2.0" in t["license"]
    ops = t["operators"]
    assert len(ops) > 150
    assert ops["Conv"]["supported"] and "FP16" in ops["Conv"]["types"]
    assert not ops["AffineGrid"]["supported"]
    assert (t["opset_min"], t["opset_max"]) == (9, 20)


def test_unsupported_ops_are_reported():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    for node, key in ((helper.make_node("Mystery", ["x"], ["y"], domain="pyface3d"),
                       "pyface3d::Mystery"),
                      (helper.make_node("BitwiseNot", ["x"], ["y"]), "BitwiseNot"),
                      (helper.make_node("NoSuchOp", ["x"], ["y"]), "NoSuchOp")):
        m = helper.make_model(helper.make_graph([node], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
        assert key in unsupported_ops(m)
    m = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                            [x], [y]),
                          opset_imports=[helper.make_opsetid("", 21)])
    assert "opset 21" in unsupported_ops(m)


def _check(path):
    m = onnx.load(path)
    bad = unsupported_ops(m)
    assert not bad, f"{path.name}: {bad}"
    return {n.op_type for n in m.graph.node}


@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("head", HEADS)
def test_heads_supported(toy_mm, tmp_path, head, fp16):
    p = tmp_path / "h.onnx"
    export_onnx(small_net(toy_mm), p, head=head, fp16=fp16, morphable=toy_mm)
    ops = _check(p)
    assert "Conv" in ops


def _registry(toy_mm, tmp_path, name, fp16, opset=17):
    net = models.create(name, num_params=toy_mm.num_params, seed=0)
    p = tmp_path / f"{name}.onnx"
    export_onnx(net, p, head="landmarks+vertices", fp16=fp16, morphable=toy_mm, opset=opset)
    return _check(p)


@pytest.mark.parametrize("name", QUICK)
def test_registry_networks_supported(toy_mm, tmp_path, name):
    _registry(toy_mm, tmp_path, name, fp16=False)


def test_thesis_net_fp16_supported(toy_mm, tmp_path):
    ops = _registry(toy_mm, tmp_path, "shufflenet3d", fp16=True)
    assert {"HardSwish", "Sigmoid", "GlobalAveragePool"} <= ops


def test_opset20_supported(toy_mm, tmp_path):
    _registry(toy_mm, tmp_path, "mobilenet_v1_x0.5", fp16=False, opset=20)


@pytest.mark.slow
@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("name", SLOW)
def test_slow_registry_networks_supported(toy_mm, tmp_path, name, fp16):
    _registry(toy_mm, tmp_path, name, fp16=fp16)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in QUICK if m != "shufflenet3d"])
def test_quick_registry_networks_fp16_supported(toy_mm, tmp_path, name):
    _registry(toy_mm, tmp_path, name, fp16=True)


def test_qdq_graph_is_supported_and_detected(toy_mm, tmp_path):
    """An explicitly quantized graph (Q/DQ nodes, symmetric int8 as TensorRT needs, made
    here with ONNX Runtime's static quantizer on the network's convolutions) parses as
    `int8-qdq` and uses only supported ops."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    from pyface3d.deploy.trt_build import (BatchProfile, EngineCache, build_engine_cached,
                                           onnx_input_info)

    fp32 = tmp_path / "f.onnx"
    export_onnx(small_net(toy_mm), fp32, head="landmarks", morphable=toy_mm)
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"crops": rng.standard_normal((2, 3, 120, 120))
                                  .astype(np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    q = tmp_path / "q.onnx"
    quantize_static(str(fp32), str(q), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv"],
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    m = onnx.load(q)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in m.graph.node}
    assert not unsupported_ops(m)
    assert onnx_input_info(q)[2] is True
    seen = []
    build_engine_cached(q, tmp_path / "cache", "int8", BatchProfile(1, 1, 4),
                        builder=lambda p, **kw: seen.append(kw) or b"plan",
                        tensorrt_version_str="10.1.0",
                        gpu={"name": "GPU", "compute_capability": "8.9"})
    (entry,) = EngineCache(tmp_path / "cache").entries().values()
    assert entry["components"]["precision"] == "int8-qdq" and seen[0]["calibration"] is None
