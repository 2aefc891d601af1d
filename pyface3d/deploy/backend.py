"""Pipeline backends on the deploy layer: ONNX Runtime and TensorRT.

Both export the network (with the ``params`` head) to ONNX once, into a cache folder keyed
by the sha256 of the network's weights, the morphable model's parameter statistics, the
opset and the precision (``$PYFACE3D_CACHE/onnx``, default ``~/.cache/pyface3d/onnx``),
and re-whiten the exported de-whitened parameters so that they honour the pipeline's
backend contract (:mod:`pyface3d.pipeline.backends`: crops -> whitened parameters).
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from typing import Optional

import numpy as np
import torch

from ..pipeline.backends import Backend, _check_crops

__all__ = ["OnnxRuntimeBackend", "TensorRTBackend", "onnx_for"]


def _cache_root() -> pathlib.Path:
    root = os.environ.get("PYFACE3D_CACHE")
    return pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "pyface3d"


def _morphable_for(net, morphable):
    from ..morphable import resolve
    from ..morphable.model import MorphableModel
    if isinstance(morphable, MorphableModel):
        return morphable
    return resolve(morphable)


def onnx_for(net: torch.nn.Module, morphable="ict", fp16: bool = False, opset: int = 17,
             cache_dir=None) -> pathlib.Path:
    """The ONNX export (``params`` head, dynamic batch) of ``net``, from the cache or
    exported into it (atomically)."""
    from .export import export_onnx

    mm = _morphable_for(net, morphable)
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(mm.param_mean.numpy().tobytes() + mm.param_std.numpy().tobytes())
    h.update(f"{type(net).__name__}|opset{opset}|fp16={fp16}".encode())
    d = pathlib.Path(cache_dir) if cache_dir else _cache_root() / "onnx"
    path = d / f"{h.hexdigest()[:32]}.onnx"
    if not path.is_file():
        d.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(net, path, opset=opset, head="params", fp16=fp16, morphable=mm)
    return path


class _Rewhiten:
    def __init__(self, mm):
        self.mean = mm.param_mean.double().numpy()
        self.std = mm.param_std.double().numpy()

    def __call__(self, params) -> np.ndarray:
        p = np.asarray(params, np.float64)
        return ((p - self.mean) / self.std).astype(np.float32)


class OnnxRuntimeBackend(Backend):
    """The network through ONNX Runtime (:class:`pyface3d.deploy.OrtRunner`): CPU, or the
    CUDA provider with ``device="cuda"`` when this onnxruntime build has it.

    ``threads``: intra-op threads (None: onnxruntime's default); ``fp16`` exports the
    network in half precision (CUDA provider)."""
    name = "onnxruntime"

    def __init__(self, net, device="cpu", fp16: bool = False, cache_dir=None,
                 threads: Optional[int] = None, morphable="ict", opset: int = 17):
        from .ort import OrtRunner, default_providers
        self.net = net
        self.device = torch.device(device)
        mm = _morphable_for(net, morphable)
        if self.device.type == "cuda":
            prov = default_providers()
            if "CUDAExecutionProvider" not in prov:
                raise RuntimeError("backend 'onnxruntime' on device 'cuda': this onnxruntime "
                                   "build has no CUDA provider (install onnxruntime-gpu)")
        else:
            prov = ["CPUExecutionProvider"]
            if fp16:
                raise ValueError("argument `fp16`: half precision is for the CUDA provider")
        self.path = onnx_for(net, mm, fp16, opset, cache_dir)
        self.runner = OrtRunner(self.path, providers=prov, threads=threads)
        self._rewhiten = _Rewhiten(mm)

    def __call__(self, crops) -> np.ndarray:
        x = _check_crops(crops)
        if len(x) == 0:
            return np.zeros((0, len(self._rewhiten.mean)), np.float32)
        return self._rewhiten(self.runner.run(x)["params"])


class TensorRTBackend(Backend):
    """The network as a TensorRT 10 engine (:func:`pyface3d.deploy.build_engine_cached`,
    :class:`pyface3d.deploy.TrtRunner`): FP16 by default, batch profile ``batch``
    (min, opt, max), engines cached in ``$PYFACE3D_CACHE/trt``."""
    name = "tensorrt"

    def __init__(self, net, device="cuda", fp16: bool = True, cache_dir=None,
                 morphable="ict", batch=(1, 1, 16), opset: int = 17):
        from .trt_build import BatchProfile, build_engine_cached, require_tensorrt
        from .trt_runtime import TrtRunner
        require_tensorrt()
        self.device = torch.device(device)
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise RuntimeError("backend 'tensorrt' needs a CUDA device (device='cuda')")
        self.net = net
        mm = _morphable_for(net, morphable)
        onnx_path = onnx_for(net, mm, False, opset, cache_dir)
        d = pathlib.Path(cache_dir) if cache_dir else _cache_root() / "trt"
        data, _, _ = build_engine_cached(onnx_path, d, precision="fp16" if fp16 else "fp32",
                                         profile=BatchProfile(*batch),
                                         device=self.device.index or 0)
        self.runner = TrtRunner(data, device=self.device.index)
        self._rewhiten = _Rewhiten(mm)

    def __call__(self, crops) -> np.ndarray:
        x = torch.from_numpy(_check_crops(crops)).to(self.device)
        out = self.runner.run(x)["params"]
        return self._rewhiten(out.float().cpu().numpy())
