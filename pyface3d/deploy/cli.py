"""``pyface3d export onnx|tensorrt``: register with :func:`add_parser` (see docs/deploy.md).

    pyface3d export onnx [--weights model.pt] --out net.onnx [--head landmarks] [--opset 17]
                         [--fp16] [--verify]
    pyface3d export onnx --model shufflenet3d --out net.onnx      # random weights: latency only
    pyface3d export tensorrt --onnx net.onnx --out net.engine [--fp16] [--int8 --calib DIR]
                             [--batch 1,1,64] [--cache-dir D]
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
import warnings

__all__ = ["add_parser", "main"]


def _err(args, msg) -> int:
    print(f"pyface3d export {getattr(args, 'target', '')}: error: {msg}", file=sys.stderr)
    return 2


def _cmd_onnx(args) -> int:
    from .export import UntrainedWarning, describe, export_onnx

    if args.weights is not None and not os.path.isfile(args.weights):
        return _err(args, f"argument --weights: {args.weights} is not a file (the model.pt "
                          f"written by `pyface3d train`)")
    src = args.weights if args.weights is not None else args.model
    if src is None:  # neither: the default weights that ship in the package
        from ..pipeline.reconstructor import default_weights_path

        src = default_weights_path()
        if src is None:
            return _err(args, "no default weights are installed "
                              "(pyface3d/assets/pyface3d_default.pt): pass --weights model.pt "
                              "or --model NAME")
    if args.model is not None:
        from .. import models

        if args.model not in models.list_models():
            return _err(args, f"argument --model: unknown model {args.model!r}; available: "
                              f"{', '.join(models.list_models())}")
    caught = []

    def _untrained_warnings():
        for w in caught:
            if issubclass(w.category, UntrainedWarning):
                print(f"warning: {w.message}", file=sys.stderr)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UntrainedWarning)
            res = export_onnx(src, args.out, opset=args.opset, head=args.head, fp16=args.fp16,
                              morphable=args.morphable, frame=args.frame,
                              dynamic_batch=not args.static_batch, verify=args.verify,
                              seed=args.seed)
    except (OSError, ValueError, TypeError, KeyError, AssertionError) as e:
        _untrained_warnings()
        from .._cli_errors import fail
        return fail(f"export {getattr(args, 'target', '')}", e)
    _untrained_warnings()
    print(describe(res))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    return 0


def _cmd_tensorrt(args) -> int:
    from .trt_build import (CalibrationBatches, atomic_write_bytes, build_engine_cached,
                            build_serialized_engine, onnx_input_info, parse_batch_profile,
                            require_tensorrt, resolve_precision, validate_profile)

    onnx_path = pathlib.Path(args.onnx)
    if not onnx_path.is_file():
        return _err(args, f"argument --onnx: {onnx_path} is not a file")
    if not str(args.out).endswith(".engine"):
        return _err(args, f"argument --out must end in .engine, got {args.out!r}")
    if args.calib is not None and not args.int8:
        return _err(args, "argument --calib: only used with --int8")
    if args.workspace < 1:
        return _err(args, f"argument --workspace must be >= 1 (MiB), got {args.workspace}")
    try:
        profile = parse_batch_profile(args.batch)
        name, dims, qdq = onnx_input_info(onnx_path)
        validate_profile(profile, dims)
        calib = None
        if args.calib is not None:
            calib = CalibrationBatches(args.calib, batch_size=profile.opt, size=int(dims[2]),
                                       max_batches=args.calib_batches)
        precision = "int8" if args.int8 else ("fp16" if args.fp16 else "fp32")
        from .export import metadata

        fp16_graph = metadata(onnx_path).get("pyface3d.fp16") == "true"
        resolve_precision(precision, qdq, calib, fp16_graph)
    except (OSError, ValueError) as e:
        return _err(args, e)
    try:
        require_tensorrt()
    except ImportError as e:
        return _err(args, e)
    if calib is not None:
        print(f"calibration: {calib.describe()}")
    ws = args.workspace << 20
    try:
        if args.no_cache:
            data = build_serialized_engine(onnx_path, precision=precision, profile=profile,
                                           workspace_bytes=ws, calibration=calib,
                                           verbose=args.verbose)
            hit, key = False, None
        else:
            cache_dir = args.cache_dir or _default_cache_dir()
            data, hit, key = build_engine_cached(onnx_path, cache_dir, precision=precision,
                                                 profile=profile, calibration=calib,
                                                 workspace_bytes=ws, device=args.device)
    except (RuntimeError, ValueError) as e:
        return _err(args, e)
    atomic_write_bytes(args.out, data)
    where = "built" if not hit else "from the engine cache"
    print(f"wrote {args.out} ({len(data) / 1e6:.1f} MB, {precision}, batch {profile}, {where}"
          + (f", key {key[:16]}" if key else "") + ")")
    return 0


def _default_cache_dir() -> str:
    from ..morphable.resolve import cache_dir

    return str(cache_dir() / "trt-engines")


def add_parser(subparsers):
    """Register ``export`` (with ``onnx`` and ``tensorrt``) on an argparse subparsers
    object; each sets ``fn``. Returns the ``export`` parser."""
    p = subparsers.add_parser("export", help="export a network to ONNX (with the landmark / "
                              "vertex head) or build a TensorRT engine")
    sub = p.add_subparsers(dest="target", required=True)
    o = sub.add_parser("onnx", help="network + reconstruction head -> .onnx")
    g = o.add_mutually_exclusive_group()
    g.add_argument("--weights", default=None, help="model.pt written by `pyface3d train` "
                   "(default: the shipped default model)")
    g.add_argument("--model", default=None, help="registry model name: RANDOM weights, "
                   "useful for latency measurements only")
    o.add_argument("--out", required=True, help="output .onnx file")
    o.add_argument("--head", default="params", help="params | landmarks | vertices, or a "
                   "combination like landmarks+vertices (params are always output)")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset, 17..20 (default 17)")
    o.add_argument("--fp16", action="store_true", help="float16 network (I/O and head float32)")
    o.add_argument("--verify", action="store_true",
                   help="compare with torch through ONNX Runtime (max abs diff per output)")
    o.add_argument("--morphable", default="ict", help="morphable model: 'ict' or a .npz path")
    o.add_argument("--frame", default="crop", choices=["crop", "model"],
                   help="landmark/vertex frame: crop pixels, y down (default) or 3DDFA's y up")
    o.add_argument("--static-batch", action="store_true", help="fixed batch 1 (default dynamic)")
    o.add_argument("--seed", type=int, default=0, help="weight seed for --model (default 0)")
    o.add_argument("--json", default=None, help="also write the export summary as JSON")
    o.set_defaults(fn=_cmd_onnx)
    t = sub.add_parser("tensorrt", help=".onnx -> TensorRT 10 engine (needs TensorRT and a GPU)")
    t.add_argument("--onnx", required=True, help="input .onnx (from `pyface3d export onnx`)")
    t.add_argument("--out", required=True, help="output .engine")
    t.add_argument("--fp16", action="store_true", help="allow FP16 kernels")
    t.add_argument("--int8", action="store_true", help="INT8: Q/DQ nodes in the ONNX, or "
                   "calibrate with --calib")
    t.add_argument("--calib", default=None, help="folder of 120x120 crops (png/jpg, BGR) or "
                   ".npy arrays of normalised crops, for INT8 calibration")
    t.add_argument("--calib-batches", type=int, default=None,
                   help="use at most this many calibration batches (of the opt batch size)")
    t.add_argument("--batch", default="1,1,64", help="optimisation profile min,opt,max batch "
                   "(default 1,1,64; one number = fixed)")
    t.add_argument("--cache-dir", default=None,
                   help="engine cache (default ~/.cache/pyface3d/trt-engines)")
    t.add_argument("--no-cache", action="store_true", help="build without the engine cache")
    t.add_argument("--workspace", type=int, default=1024, help="workspace pool limit, MiB")
    t.add_argument("--device", type=int, default=0, help="CUDA device index")
    t.add_argument("--verbose", action="store_true", help="TensorRT verbose log")
    t.set_defaults(fn=_cmd_tensorrt)
    return p
