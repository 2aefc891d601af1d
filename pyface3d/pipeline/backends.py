"""Network backends: what maps a batch of 120x120 crops to whitened parameters.

Every backend is a callable ``backend(crops) -> (B, P) float32 numpy``, where ``crops`` is a
float32 numpy array (B, 3, 120, 120) of BGR crops normalised as ``(x - 127.5) / 128``.
Backends are chosen by name with :func:`make_backend`:

=============== ================================================================
``torch``       eager PyTorch (CPU: traced and frozen, BatchNorm folded; CUDA: optional fp16)
``compile``     ``torch.compile`` of the network (first calls compile)
``onnxruntime`` the network exported to ONNX and run by ONNX Runtime (CPU, or its CUDA
                provider when present); see :mod:`pyface3d.deploy`
``tensorrt``    a TensorRT 10 engine built from the ONNX export (CUDA; optional dependency)
=============== ================================================================
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import torch

__all__ = ["Backend", "TorchBackend", "CompileBackend", "BACKENDS", "make_backend"]


class Backend:
    name = "backend"
    device = torch.device("cpu")

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _check_crops(crops) -> np.ndarray:
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    if not isinstance(crops, np.ndarray) or crops.ndim != 4 or crops.shape[1] != 3:
        raise ValueError(f"argument `crops` must be a (B, 3, H, W) array, got "
                         f"{getattr(crops, 'shape', type(crops).__name__)}")
    return np.ascontiguousarray(crops, dtype=np.float32)


class TorchBackend(Backend):
    """Eager PyTorch. On CPU with ``optimize`` the network is traced and frozen on its first
    batch (BatchNorm folded, oneDNN; checked against the module, which is used as is when
    tracing fails). On CUDA ``fp16`` runs the network in half precision (outputs float32)."""
    name = "torch"

    def __init__(self, net: torch.nn.Module, device="cpu", fp16: bool = False,
                 optimize: bool = True):
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("argument `device` is 'cuda' but CUDA is not available here")
        if fp16 and self.device.type != "cuda":
            raise ValueError("argument `fp16`: half precision is for CUDA only (CPU fp16 "
                             "convolutions are slow); use device='cuda' or fp16=False")
        self.net = net.eval().to(self.device)
        self.fp16 = fp16
        if fp16:
            self.net = self.net.half()
        self.optimize = optimize and self.device.type == "cpu"
        self._run = None

    @torch.no_grad()
    def __call__(self, crops) -> np.ndarray:
        x = torch.from_numpy(_check_crops(crops)).to(self.device, non_blocking=True)
        if self.fp16:
            x = x.half()
        if self._run is None:
            if self.optimize and x.shape[0] > 0:
                from ..eval.evaluate import _frozen
                self._run = _frozen(self.net, x)
            else:
                self._run = self.net
        return self._run(x).float().cpu().numpy()


class CompileBackend(TorchBackend):
    """``torch.compile`` (default mode; ``dynamic=True`` so batch sizes do not recompile)."""
    name = "compile"

    def __init__(self, net, device="cpu", fp16=False, mode: Optional[str] = None):
        super().__init__(net, device, fp16, optimize=False)
        self._run = torch.compile(self.net, mode=mode, dynamic=True)


def _ort_backend(net, device="cpu", fp16=False, cache_dir=None, threads=None, **kw):
    from ..deploy.backend import OnnxRuntimeBackend
    return OnnxRuntimeBackend(net, device=device, fp16=fp16, cache_dir=cache_dir,
                              threads=threads, **kw)


def _trt_backend(net, device="cuda", fp16=True, cache_dir=None, **kw):
    from ..deploy.backend import TensorRTBackend
    return TensorRTBackend(net, device=device, fp16=fp16, cache_dir=cache_dir, **kw)


BACKENDS: Dict[str, Callable[..., Backend]] = {
    "torch": TorchBackend,
    "compile": CompileBackend,
    "onnxruntime": _ort_backend,
    "tensorrt": _trt_backend,
}


def make_backend(name: str, net: torch.nn.Module, device="cpu", fp16: bool = False,
                 **kwargs) -> Backend:
    """The backend ``name`` (see the module table) running ``net``."""
    if name not in BACKENDS:
        raise ValueError(f"argument `backend` must be one of {sorted(BACKENDS)}, got {name!r}")
    return BACKENDS[name](net, device=device, fp16=fp16, **kwargs)
