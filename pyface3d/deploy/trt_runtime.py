"""TensorRT 10 runtimes for serialized engines.

* :class:`TrtRunner`: torch CUDA tensors in and out, on torch's current stream (so the
  engine is ordered with the surrounding torch work, no synchronisation), outputs sized
  per input shape, optional CUDA-graph capture for one fixed batch size.
* :class:`PycudaRunner`: numpy in and out through page-locked host buffers and pycuda
  (no torch: edge deployment).

``tensorrt`` / ``pycuda`` / ``torch`` are imported when a runner is created; missing ones
raise ImportError saying how to install them. Engine I/O is by tensor name
(``engine.num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``,
``get_tensor_dtype``); shapes are set with ``context.set_input_shape`` and buffers with
``context.set_tensor_address``; ``context.execute_async_v3(stream)`` runs.
"""
from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .trt_build import require_tensorrt

__all__ = ["TrtRunner", "PycudaRunner", "load_engine_bytes", "require_pycuda",
           "PYCUDA_INSTALL_HINT"]

PYCUDA_INSTALL_HINT = ("pycuda is not installed: `pip install pycuda` (it compiles against "
                       "the CUDA toolkit; needs nvcc and the CUDA headers), or use "
                       "TrtRunner with torch")


def require_pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError as e:
        raise ImportError(PYCUDA_INSTALL_HINT) from e
    return cuda


def load_engine_bytes(engine: Union[bytes, bytearray, str, os.PathLike]) -> bytes:
    """Serialized engine bytes from bytes or a file path."""
    if isinstance(engine, (bytes, bytearray, memoryview)):
        data = bytes(engine)
    elif isinstance(engine, (str, os.PathLike)):
        p = pathlib.Path(engine)
        if not p.is_file():
            raise FileNotFoundError(f"argument `engine`: no such engine file: {str(p)!r}")
        data = p.read_bytes()
    else:
        raise TypeError(f"argument `engine` must be bytes or a path, got "
                        f"{type(engine).__name__}")
    if not data:
        raise ValueError("argument `engine` is empty")
    return data


def _deserialize(trt, data: bytes):
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise RuntimeError("TensorRT could not deserialize the engine (built by another "
                           "TensorRT version or for another GPU? rebuild it; the engine cache "
                           "keys on both)")
    return runtime, engine


def _io(trt, engine) -> Tuple[str, List[str], Dict[str, object]]:
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    if len(inputs) != 1:
        raise ValueError(f"expected an engine with one input (the crops), found {inputs}")
    dtypes = {n: trt.nptype(engine.get_tensor_dtype(n)) for n in names}
    return inputs[0], outputs, dtypes


def _check_batch_shape(shape, chw, lo, hi, where: str) -> None:
    if len(shape) != 4 or tuple(shape[1:]) != tuple(chw):
        want = ", ".join(map(str, chw))
        raise ValueError(f"{where}: argument `batch` must have shape (B, {want}), got "
                         f"{tuple(shape)}")
    if not lo <= shape[0] <= hi:
        raise ValueError(f"{where}: batch size {shape[0]} is outside the engine's optimisation "
                         f"profile [{lo}, {hi}] (rebuild with --batch min,opt,max)")


class TrtRunner:
    """Run a TensorRT engine on torch CUDA tensors.

    Args:
        engine: serialized engine bytes or an ``.engine`` path.
        device: CUDA device index (default: torch's current device).

    ``run(x)`` takes a (B, C, H, W) CUDA tensor of the engine's input dtype, enqueues on
    ``torch.cuda.current_stream()`` and returns ``{output: tensor}`` allocated for that
    input shape (fresh tensors each call, from torch's caching allocator). ``capture(B)``
    records the engine at batch B into a CUDA graph; later ``run`` calls with batch B copy
    into the graph's static input, replay it and return clones of its static outputs.
    """

    def __init__(self, engine, device: Optional[int] = None):
        trt = require_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("TrtRunner needs a CUDA device (torch.cuda.is_available() is "
                               "False)")
        self._trt = trt
        self.device = torch.device("cuda", torch.cuda.current_device() if device is None
                                   else device)
        with torch.cuda.device(self.device):
            self.runtime, self.engine = _deserialize(trt, load_engine_bytes(engine))
            self.context = self.engine.create_execution_context()
        self.input_name, self.output_names, np_dtypes = _io(trt, self.engine)
        self.dtypes = {n: _torch_dtype(torch, d) for n, d in np_dtypes.items()}
        mn, _, mx = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.chw = tuple(int(d) for d in mn[1:])
        self.batch_range = (int(mn[0]), int(mx[0]))
        self._shape = None
        self._graph = None

    def _set_shape(self, shape) -> Dict[str, Tuple[int, ...]]:
        if shape != self._shape:
            if not self.context.set_input_shape(self.input_name, tuple(shape)):
                raise RuntimeError(f"TensorRT rejected input shape {tuple(shape)}")
            self._shape = shape
        return {n: tuple(self.context.get_tensor_shape(n)) for n in self.output_names}

    def _enqueue(self, ctx, x, outs, stream_handle: int) -> None:
        ctx.set_tensor_address(self.input_name, int(x.data_ptr()))
        for n, t in outs.items():
            ctx.set_tensor_address(n, int(t.data_ptr()))
        if not ctx.execute_async_v3(stream_handle):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _check(self, x):
        import torch

        if not isinstance(x, torch.Tensor) or not x.is_cuda:
            raise TypeError("TrtRunner.run: argument `batch` must be a CUDA torch tensor")
        if x.device != self.device:
            raise ValueError(f"TrtRunner.run: argument `batch` is on {x.device}, the engine on "
                             f"{self.device}")
        if x.dtype != self.dtypes[self.input_name]:
            raise TypeError(f"TrtRunner.run: argument `batch` must be "
                            f"{self.dtypes[self.input_name]}, got {x.dtype}")
        _check_batch_shape(tuple(x.shape), self.chw, *self.batch_range, where="TrtRunner.run")

    def run(self, x) -> Dict[str, object]:
        import torch

        self._check(x)
        x = x.contiguous()
        if self._graph is not None and x.shape[0] == self._graph["batch"]:
            g = self._graph
            g["input"].copy_(x)
            g["graph"].replay()
            return {n: t.clone() for n, t in g["outputs"].items()}
        shapes = self._set_shape(tuple(x.shape))
        outs = {n: torch.empty(s, dtype=self.dtypes[n], device=self.device)
                for n, s in shapes.items()}
        self._enqueue(self.context, x, outs, torch.cuda.current_stream(self.device).cuda_stream)
        return outs

    def capture(self, batch: int):
        """Record the engine at batch ``batch`` into a CUDA graph (replayed by ``run``).

        The graph gets its own execution context (its shapes and scratch memory must not
        change under it), so eager runs at other batch sizes stay possible."""
        import torch

        _check_batch_shape((batch,) + self.chw, self.chw, *self.batch_range,
                           where="TrtRunner.capture")
        with torch.cuda.device(self.device):
            ctx = self.engine.create_execution_context()
        x = torch.zeros((batch,) + self.chw, dtype=self.dtypes[self.input_name],
                        device=self.device)
        if not ctx.set_input_shape(self.input_name, tuple(x.shape)):
            raise RuntimeError(f"TensorRT rejected input shape {tuple(x.shape)}")
        outs = {n: torch.empty(tuple(ctx.get_tensor_shape(n)), dtype=self.dtypes[n],
                               device=self.device) for n in self.output_names}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            # one enqueue after a shape change before capturing (TensorRT's requirement)
            self._enqueue(ctx, x, outs, side.cuda_stream)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._enqueue(ctx, x, outs, torch.cuda.current_stream(self.device).cuda_stream)
        self._graph = {"batch": batch, "graph": graph, "input": x, "outputs": outs,
                       "context": ctx}
        return self


def _torch_dtype(torch, np_dtype):
    table = {np.float32: torch.float32, np.float16: torch.float16, np.int32: torch.int32,
             np.int64: torch.int64, np.int8: torch.int8, np.uint8: torch.uint8,
             np.bool_: torch.bool}
    for k, v in table.items():
        if np.dtype(np_dtype) == np.dtype(k):
            return v
    raise TypeError(f"engine tensor dtype {np_dtype} has no torch equivalent here")


class PycudaRunner:
    """Run a TensorRT engine from numpy, without torch (pycuda for memory and streams).

    Buffers are allocated once for the profile's largest batch: a page-locked host buffer
    and a device buffer per I/O tensor; ``run(batch)`` copies the batch in, sets the input
    shape, enqueues on its own stream, copies the outputs back and synchronises.

    Args:
        engine: serialized engine bytes or an ``.engine`` path.
        device: CUDA device index; a context is created (retained primary context) and
            made current around each call.
    """

    def __init__(self, engine, device: int = 0):
        trt = require_tensorrt()
        cuda = require_pycuda()
        cuda.init()
        self._cuda = cuda
        self.ctx = cuda.Device(device).retain_primary_context()
        self.ctx.push()
        try:
            self.runtime, self.engine = _deserialize(trt, load_engine_bytes(engine))
            self.context = self.engine.create_execution_context()
            self.input_name, self.output_names, self.dtypes = _io(trt, self.engine)
            mn, _, mx = self.engine.get_tensor_profile_shape(self.input_name, 0)
            self.chw = tuple(int(d) for d in mn[1:])
            self.batch_range = (int(mn[0]), int(mx[0]))
            self.stream = cuda.Stream()
            self.context.set_input_shape(self.input_name, tuple(mx))
            self.host, self.dev = {}, {}
            for n in [self.input_name] + self.output_names:
                shape = tuple(self.context.get_tensor_shape(n))
                self.host[n] = cuda.pagelocked_empty(shape, self.dtypes[n])
                self.dev[n] = cuda.mem_alloc(self.host[n].nbytes)
                self.context.set_tensor_address(n, int(self.dev[n]))
        finally:
            self.ctx.pop()

    def run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        cuda = self._cuda
        if not isinstance(batch, np.ndarray):
            raise TypeError(f"PycudaRunner.run: argument `batch` must be a numpy array, got "
                            f"{type(batch).__name__}")
        if batch.dtype != self.dtypes[self.input_name]:
            raise TypeError(f"PycudaRunner.run: argument `batch` must be "
                            f"{np.dtype(self.dtypes[self.input_name])}, got {batch.dtype}")
        _check_batch_shape(batch.shape, self.chw, *self.batch_range, where="PycudaRunner.run")
        b = batch.shape[0]
        self.ctx.push()
        try:
            hin = self.host[self.input_name][:b]
            hin[...] = batch
            cuda.memcpy_htod_async(self.dev[self.input_name], hin, self.stream)
            self.context.set_input_shape(self.input_name, tuple(batch.shape))
            res = {}
            for n in self.output_names:
                shape = tuple(self.context.get_tensor_shape(n))
                res[n] = self.host[n][:shape[0]].reshape(shape)
            if not self.context.execute_async_v3(self.stream.handle):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            for n in self.output_names:
                cuda.memcpy_dtoh_async(res[n], self.dev[n], self.stream)
            self.stream.synchronize()
            return {n: a.copy() for n, a in res.items()}
        finally:
            self.ctx.pop()

    def close(self) -> None:
        """Free the device buffers and release the context."""
        if getattr(self, "dev", None) is not None:
            self.ctx.push()
            try:
                for d in self.dev.values():
                    d.free()
                self.dev = None
            finally:
                self.ctx.pop()
                self.ctx.detach()

    def __del__(self):
        # at interpreter shutdown the CUDA context may be gone already
        with contextlib.suppress(Exception):
            self.close()
