"""ONNX Runtime backend tuned for per-face latency (batch 1).

>>> r = OrtRunner("shufflenet3d_lm.onnx", threads=1)
>>> out = r.run(crops)          # (B, 3, 120, 120) float32 numpy or torch
>>> out["landmarks"].shape      # (B, 68, 3)
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

__all__ = ["OrtRunner", "default_providers", "require_onnxruntime"]


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:  # pragma: no cover - a pinned requirement
        raise ImportError("onnxruntime is not installed: `pip install onnxruntime` (CPU) or "
                          "`pip install onnxruntime-gpu` (CUDA); requirements.txt pins the "
                          "tested version") from e
    return onnxruntime


def default_providers() -> List[str]:
    """CUDA execution provider when this onnxruntime build has it, then the CPU one."""
    ort = require_onnxruntime()
    avail = ort.get_available_providers()
    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in avail else []) + \
        ["CPUExecutionProvider"]


class OrtRunner:
    """An ``onnxruntime.InferenceSession`` set up for low latency at batch 1.

    Session options: all graph optimisations (``ORT_ENABLE_ALL``: constant folding, conv +
    activation fusion, NCHWc layouts on the CPU), sequential execution, one inter-op thread,
    ``threads`` intra-op threads (None: onnxruntime's default, the physical cores),
    ``spinning``: intra-op threads spin between runs (lower latency, busier cores).

    Args:
        path: ``.onnx`` file (from :func:`pyface3d.deploy.export_onnx`).
        providers: ``"auto"`` (CUDA provider when present, else CPU) or a list of
            onnxruntime provider names.
        threads: intra-op threads (int >= 1) or None.
        spinning: allow intra-op thread spinning.
        optimized_model_path: where to save the optimised graph (offline reuse), or None.
    """

    def __init__(self, path: Union[str, os.PathLike], providers: Union[str, Sequence[str]] = "auto",
                 threads: Optional[int] = None, spinning: bool = True,
                 optimized_model_path: Optional[Union[str, os.PathLike]] = None):
        ort = require_onnxruntime()
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"argument `path`: no such ONNX file: {path!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"argument `threads` must be an int >= 1 or None, got {threads!r}")
        if providers == "auto":
            providers = default_providers()
        elif isinstance(providers, str) or not all(isinstance(p, str) for p in providers):
            raise ValueError(f"argument `providers` must be 'auto' or a list of provider names, "
                             f"got {providers!r}")
        avail = ort.get_available_providers()
        missing = [p for p in providers if p not in avail]
        if missing:
            raise ValueError(f"argument `providers`: {missing} not available in this "
                             f"onnxruntime build (available: {avail})")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if threads is not None:
            so.intra_op_num_threads = threads
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        if optimized_model_path is not None:
            so.optimized_model_filepath = os.fspath(optimized_model_path)
        self.path = path
        self.threads = threads
        self.session = ort.InferenceSession(path, sess_options=so, providers=list(providers))
        self.providers = self.session.get_providers()
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{path}: expected one input (the crops), found "
                             f"{[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.input_type = inputs[0].type
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.output_shapes = {o.name: list(o.shape) for o in self.session.get_outputs()}
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)

    # ------------------------------------------------------------------ checks
    def _check(self, x_shape, dtype_name: str) -> None:
        if dtype_name != "float32":
            raise TypeError(f"OrtRunner.run: argument `batch` must be float32, got {dtype_name}")
        if len(x_shape) != len(self.input_shape):
            raise ValueError(f"OrtRunner.run: argument `batch` must have shape "
                             f"{self.input_shape}, got {tuple(x_shape)}")
        for got, want in zip(x_shape, self.input_shape):
            if isinstance(want, int) and got != want:
                raise ValueError(f"OrtRunner.run: argument `batch` must have shape "
                                 f"{self.input_shape}, got {tuple(x_shape)}")
        if x_shape[0] < 1:
            raise ValueError("OrtRunner.run: argument `batch` is empty (batch size 0)")

    def _out_shape(self, name: str, batch: int) -> List[int]:
        return [batch if not isinstance(d, int) else d for d in self.output_shapes[name]]

    # ------------------------------------------------------------------ run
    def run(self, batch) -> Dict[str, object]:
        """``batch``: (B, 3, H, W) float32 numpy array or torch tensor (normalised crops).

        Returns ``{output name: array}``: numpy arrays for numpy input, torch tensors for
        torch input (CUDA tensors go through an IO binding when the CUDA provider is in use;
        CPU tensors are shared with numpy without copies)."""
        if isinstance(batch, np.ndarray):
            self._check(batch.shape, str(batch.dtype))
            x = np.ascontiguousarray(batch)
            outs = self.session.run(self.output_names, {self.input_name: x})
            return dict(zip(self.output_names, outs))
        try:
            import torch
        except ImportError:  # pragma: no cover - numpy-only installs
            torch = None
        if torch is None or not isinstance(batch, torch.Tensor):
            raise TypeError(f"OrtRunner.run: argument `batch` must be a numpy array or a torch "
                            f"tensor, got {type(batch).__name__}")
        self._check(tuple(batch.shape), str(batch.dtype).replace("torch.", ""))
        if batch.is_cuda and "CUDAExecutionProvider" in self.providers:
            return self._run_cuda(batch.contiguous())
        x = batch.detach().cpu().contiguous().numpy()
        outs = self.session.run(self.output_names, {self.input_name: x})
        return {n: torch.from_numpy(o) for n, o in zip(self.output_names, outs)}

    def _run_cuda(self, x):
        """IO binding on torch CUDA memory (inputs read and outputs written in place)."""
        import torch

        b = x.shape[0]
        dev = x.device.index or 0
        binding = self.session.io_binding()
        binding.bind_input(self.input_name, "cuda", dev, np.float32, tuple(x.shape),
                           x.data_ptr())
        outs = {}
        for n in self.output_names:
            t = torch.empty(self._out_shape(n, b), dtype=torch.float32, device=x.device)
            binding.bind_output(n, "cuda", dev, np.float32, tuple(t.shape), t.data_ptr())
            outs[n] = t
        torch.cuda.current_stream(x.device).synchronize()  # x is ready before ORT reads it
        self.session.run_with_iobinding(binding)
        return outs

    def __repr__(self) -> str:
        return (f"OrtRunner({self.path!r}, providers={self.providers}, threads={self.threads}, "
                f"outputs={self.output_names})")
