"""Clean an exported ONNX graph: fold what is static, leave only the real computation.

The TorchScript exporter traces ``x.shape`` reads as ``Shape -> Gather -> Unsqueeze ->
Concat`` chains (channel shuffle, ``view(b, ...)``) and keeps ``Identity`` and ``Constant``
nodes. With a dynamic batch only dim 0 is unknown, so :func:`simplify` repeats, until
nothing changes:

1. ``Constant`` nodes -> initializers; ``Identity`` nodes and ``Cast`` nodes to the type
   the tensor already has removed (graph outputs kept);
2. ``Shape`` / ``Gather(Shape)`` of dims that shape inference knows statically -> constants;
3. nodes whose inputs are all constants -> evaluated (``onnx.reference``) into initializers;
4. ``Reshape`` with a computed target shape whose output keeps the input's (symbolic) dim 0
   and has static other dims -> constant target ``[0, d1, d2, ...]`` (0 = copy dim 0);
5. dead nodes and unused initializers removed.

Every step keeps the graph's numerics (only constant subgraphs are evaluated). The op list
of the result is what :func:`op_counts` reports and what the TensorRT support check reads.
"""
from __future__ import annotations

import pathlib
from collections import Counter
from typing import Dict, List, Optional, Union

import numpy as np

__all__ = ["simplify", "op_counts", "op_types", "unsupported_ops", "load_trt_op_table",
           "TRT_OP_TABLE"]

TRT_OP_TABLE = pathlib.Path(__file__).with_name("trt_onnx_ops.json")

# never evaluated at export time (non-deterministic or stateful)
_NO_FOLD = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
            "Bernoulli", "Multinomial", "If", "Loop", "Scan"}
# largest constant (elements) that folding may create
_MAX_FOLD_ELEMENTS = 1 << 24


def op_counts(model) -> Dict[str, int]:
    """``{op_type: count}`` over the main graph's nodes."""
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def op_types(model) -> List[str]:
    return sorted({n.op_type for n in model.graph.node})


def load_trt_op_table(path: Union[str, pathlib.Path, None] = None) -> dict:
    """The TensorRT ONNX-parser operator table kept as data (``trt_onnx_ops.json``)."""
    import json

    with open(path or TRT_OP_TABLE) as f:
        return json.load(f)


def unsupported_ops(model, table: Optional[dict] = None) -> Dict[str, str]:
    """Operators of ``model`` that TensorRT's ONNX parser does not list as supported, with
    the reason (``{op: reason}``; empty when everything is supported). Also checks the
    opset against the table's range and the non-default domains."""
    table = table or load_trt_op_table()
    ops = table["operators"]
    bad: Dict[str, str] = {}
    for imp in model.opset_import:
        lo, hi = table["opset_min"], table["opset_max"]
        if imp.domain in ("", "ai.onnx") and not lo <= imp.version <= hi:
            bad[f"opset {imp.version}"] = (f"outside TensorRT {table['tensorrt_version']}'s "
                                           f"range {table['opset_min']}..{table['opset_max']}")
    for n in model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            bad[f"{n.domain}::{n.op_type}"] = "custom domain (needs a TensorRT plugin)"
        elif n.op_type not in ops:
            bad[n.op_type] = "not in TensorRT's operator table"
        elif not ops[n.op_type]["supported"]:
            bad[n.op_type] = "listed as unsupported by TensorRT"
    return bad


# ---------------------------------------------------------------------------- helpers
class _Consts:
    """Initializer values by name, converted to numpy on first use."""

    def __init__(self, model):
        self._protos = {t.name: t for t in model.graph.initializer}
        self._values: Dict[str, np.ndarray] = {}

    def __contains__(self, name) -> bool:
        return name in self._protos or name in self._values

    def __getitem__(self, name) -> np.ndarray:
        if name not in self._values:
            from onnx import numpy_helper

            self._values[name] = numpy_helper.to_array(self._protos[name])
        return self._values[name]

    def __setitem__(self, name, value) -> None:
        self._values[name] = value

    def size(self, name) -> int:
        if name in self._values:
            return int(self._values[name].size)
        return int(np.prod(self._protos[name].dims, dtype=np.int64))


def _consts(model) -> _Consts:
    return _Consts(model)


# initializers up to this many elements stay constants for shape inference (shape tensors,
# axes, ...); larger ones (weights) become typed inputs so inference does not copy them
_SKELETON_MAX_ELEMENTS = 4096


def _skeleton(model):
    """A copy of ``model`` without the weight bytes, for fast shape inference."""
    import onnx

    m = onnx.ModelProto()
    m.ir_version = model.ir_version
    m.opset_import.extend(model.opset_import)
    g = m.graph
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    names = {i.name for i in model.graph.input}
    for t in model.graph.initializer:
        if int(np.prod(t.dims, dtype=np.int64)) <= _SKELETON_MAX_ELEMENTS:
            g.initializer.append(t)
        elif t.name not in names:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m


def _infer(model):
    """(name -> dims (int, symbolic str, or None), name -> elem type) from ONNX shape
    inference (with data propagation, so computed shapes are known)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(_skeleton(model), strict_mode=False,
                                                     data_prop=True)
    except Exception:  # inference is an aid: without it nothing is folded
        return {}, {}
    shapes, types = {}, {}
    g = inferred.graph
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        t = vi.type.tensor_type
        if t.elem_type:
            types[vi.name] = t.elem_type
        if not t.HasField("shape"):
            continue
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else
                           (d.dim_param if d.HasField("dim_param") else None)
                           for d in t.shape.dim]
    for init in model.graph.initializer:
        shapes[init.name] = list(init.dims)
        types[init.name] = init.data_type
    return shapes, types


def _add_initializer(model, name: str, value: np.ndarray) -> None:
    from onnx import numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))


def _replace_with_constant(model, node, values: List[np.ndarray]) -> None:
    for name, v in zip(node.output, values):
        _add_initializer(model, name, v)
    model.graph.node.remove(node)


def _opset(model) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise ValueError("model has no default-domain opset import")


# ---------------------------------------------------------------------------- passes
def _constants_to_initializers(model) -> bool:
    from onnx import numpy_helper

    changed = False
    for node in list(model.graph.node):
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
            continue
        attr = {a.name: a for a in node.attribute}
        if "value" in attr:
            v = numpy_helper.to_array(attr["value"].t)
        elif "value_float" in attr:
            v = np.array(attr["value_float"].f, np.float32)
        elif "value_int" in attr:
            v = np.array(attr["value_int"].i, np.int64)
        elif "value_floats" in attr:
            v = np.array(list(attr["value_floats"].floats), np.float32)
        elif "value_ints" in attr:
            v = np.array(list(attr["value_ints"].ints), np.int64)
        else:
            continue
        _replace_with_constant(model, node, [v])
        changed = True
    return changed


def _rename_uses(model, old: str, new: str) -> None:
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name == old:
                n.input[i] = new


def _remove_identity(model) -> bool:
    outputs = {o.name for o in model.graph.output}
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx"):
            continue
        src, dst = node.input[0], node.output[0]
        if dst in outputs:
            if src in outputs or src in {i.name for i in model.graph.input}:
                continue
            # rename the producer's output (or the initializer) to the graph output's name
            producer = next((n for n in model.graph.node if src in n.output), None)
            if producer is not None:
                producer.output[list(producer.output).index(src)] = dst
            else:
                init = next((t for t in model.graph.initializer if t.name == src), None)
                if init is None:
                    continue
                init.name = dst
            _rename_uses(model, src, dst)
        else:
            _rename_uses(model, dst, src)
        model.graph.node.remove(node)
        changed = True
    return changed


def _remove_noop_casts(model, types) -> bool:
    """``Cast`` to the type its input already has -> removed (``.float()`` on float)."""
    outputs = {o.name for o in model.graph.output}
    changed = False
    for node in list(model.graph.node):
        if node.op_type != "Cast" or node.output[0] in outputs:
            continue
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if to is None or types.get(node.input[0]) != to:
            continue
        _rename_uses(model, node.output[0], node.input[0])
        model.graph.node.remove(node)
        changed = True
    return changed


def _fold_shape_queries(model, shapes) -> bool:
    consts = _consts(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    changed = False
    for node in list(model.graph.node):
        if node.op_type == "Shape" and node.domain in ("", "ai.onnx"):
            dims = shapes.get(node.input[0])
            if dims is None:
                continue
            attr = {a.name: a.i for a in node.attribute}
            r = len(dims)
            start, end = attr.get("start", 0), attr.get("end", r)
            start, end = (start + r if start < 0 else start), (end + r if end < 0 else end)
            sel = dims[max(0, start):min(r, end)]
            if all(isinstance(d, int) and d > 0 for d in sel):
                _replace_with_constant(model, node, [np.array(sel, np.int64)])
                changed = True
        elif node.op_type == "Gather" and node.input[1] in consts:
            src = producer.get(node.input[0])
            if src is None or src.op_type != "Shape":
                continue
            dims = shapes.get(src.input[0])
            if dims is None:
                continue
            attr = {a.name: a.i for a in src.attribute}
            r = len(dims)
            start, end = attr.get("start", 0), attr.get("end", r)
            start, end = (start + r if start < 0 else start), (end + r if end < 0 else end)
            sel = dims[max(0, start):min(r, end)]
            idx = consts[node.input[1]]
            flat = [int(i) + len(sel) if int(i) < 0 else int(i) for i in np.ravel(idx)]
            if any(i < 0 or i >= len(sel) for i in flat):
                continue
            vals = [sel[i] for i in flat]
            if all(isinstance(d, int) and d > 0 for d in vals):
                _replace_with_constant(model, node,
                                       [np.array(vals, np.int64).reshape(np.shape(idx))])
                changed = True
    return changed


def _fold_constant_nodes(model) -> bool:
    from onnx.reference import ReferenceEvaluator

    opset = _opset(model)
    changed = False
    consts = _consts(model)
    for node in list(model.graph.node):
        if node.domain not in ("", "ai.onnx") or node.op_type in _NO_FOLD:
            continue
        ins = [i for i in node.input if i]
        if not ins or not all(i in consts for i in ins):
            continue
        if sum(consts.size(i) for i in ins) > _MAX_FOLD_ELEMENTS:
            continue
        import onnx

        g = onnx.helper.make_graph(
            [node], "fold",
            [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(
                consts[i].dtype), consts[i].shape) for i in ins],
            [onnx.helper.make_empty_tensor_value_info(o) for o in node.output])
        m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", opset)])
        try:
            vals = ReferenceEvaluator(m).run(None, {i: consts[i] for i in ins})
        except Exception:  # an op the reference cannot run: leave it in the graph
            continue
        vals = [np.asarray(v) for v in vals]
        if any(v.size > _MAX_FOLD_ELEMENTS for v in vals):
            continue
        _replace_with_constant(model, node, vals)
        for o, v in zip(node.output, vals):
            consts[o] = v
        changed = True
    return changed


def _static_reshapes(model, shapes) -> bool:
    consts = _consts(model)
    changed = False
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] in consts:
            continue
        if any(a.name == "allowzero" and a.i for a in node.attribute):
            continue
        out = shapes.get(node.output[0])
        src = shapes.get(node.input[0])
        if not out or not src:
            continue
        d0 = out[0]
        if not (isinstance(d0, str) and d0 and d0 == src[0]):
            continue
        if not all(isinstance(d, int) and d > 0 for d in out[1:]):
            continue
        name = node.output[0] + "__shape"
        _add_initializer(model, name, np.array([0] + list(out[1:]), np.int64))
        node.input[1] = name
        changed = True
    return changed


def _dead_code(model) -> bool:
    needed = {o.name for o in model.graph.output}
    keep = []
    for node in reversed(list(model.graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    changed = len(keep) != len(model.graph.node)
    if changed:
        del model.graph.node[:]
        model.graph.node.extend(reversed(keep))
    inits = [t for t in model.graph.initializer if t.name in needed]
    if len(inits) != len(model.graph.initializer):
        del model.graph.initializer[:]
        model.graph.initializer.extend(inits)
        changed = True
    return changed


def simplify(model, max_rounds: int = 20):
    """Return a cleaned copy of ``model`` (see the module doc). Checked with
    ``onnx.checker`` afterwards; shapes are re-inferred into ``value_info``."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for _ in range(max_rounds):
        changed = _constants_to_initializers(m)
        changed |= _remove_identity(m)
        shapes, types = _infer(m)
        changed |= _remove_noop_casts(m, types)
        changed |= _fold_shape_queries(m, shapes)
        changed |= _fold_constant_nodes(m)
        changed |= _static_reshapes(m, _infer(m)[0])
        changed |= _dead_code(m)
        if not changed:
            break
    # drop the graph inputs that duplicate initializers (old exporters) and stale value_info
    init_names = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in init_names]
    del m.graph.input[:]
    m.graph.input.extend(ins)
    del m.graph.value_info[:]
    m = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    onnx.checker.check_model(m)
    return m
