"""TensorRT 10 engine building: optimisation profiles, FP16 / INT8 (explicit Q/DQ or an
entropy calibrator over crops), a persistent timing cache, and an engine cache keyed by
everything an engine depends on.

``tensorrt`` (and torch's CUDA, for calibration) are imported inside the functions that
need them: everything else here (profiles, cache keys, the cache directory, calibration
batches) works and is tested without TensorRT. See docs/deploy.md.

Engine cache key = sha256 of the canonical JSON of
``{"format": 1, "onnx_sha256", "tensorrt", "gpu", "compute_capability", "precision",
"profile": {"input", "min", "opt", "max"}, "options"}`` (:func:`engine_cache_key`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import tempfile
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["TENSORRT_INSTALL_HINT", "TENSORRT_UNAVAILABLE_REASON", "require_tensorrt",
           "tensorrt_version", "BatchProfile", "parse_batch_profile", "onnx_input_info",
           "validate_profile", "gpu_info", "engine_cache_key", "EngineCache",
           "CalibrationBatches", "has_qdq", "resolve_precision", "build_serialized_engine",
           "make_entropy_calibrator", "build_engine_cached", "atomic_write_bytes",
           "PRECISIONS", "pin_head_fp32", "HEAD_SCOPE"]

TENSORRT_INSTALL_HINT = (
    "TensorRT's Python bindings (module `tensorrt`, version 10) are not installed. Install "
    "NVIDIA's `tensorrt` wheel for your CUDA version (e.g. `pip install tensorrt-cu12` from "
    "NVIDIA's package index, or the wheel shipped in the TensorRT tar package), on a machine "
    "with an NVIDIA GPU and driver; then rerun. The ONNX file itself runs without TensorRT "
    "through ONNX Runtime (pyface3d.deploy.OrtRunner).")
#: why the real-engine tests skip in this workplace
TENSORRT_UNAVAILABLE_REASON = ("TensorRT cannot be installed in this workplace (its libraries "
                               "come only from NVIDIA's index)")
PRECISIONS = ("fp32", "fp16", "int8")
CACHE_FORMAT = "pyface3d-trt-engine-cache"
CACHE_VERSION = 1
KEY_FORMAT = 1


def require_tensorrt():
    """``import tensorrt`` or an ImportError saying how to install it."""
    try:
        import tensorrt
    except ImportError as e:
        raise ImportError(TENSORRT_INSTALL_HINT) from e
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise ImportError(f"TensorRT {tensorrt.__version__} is too old: pyface3d.deploy uses "
                          f"the TensorRT 10 API (execute_async_v3, named tensors). "
                          + TENSORRT_INSTALL_HINT)
    return tensorrt


def tensorrt_version() -> str:
    return str(require_tensorrt().__version__)


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, fsync and
    ``os.replace``: readers see the old file or the new one, never a partial one."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- profiles
@dataclasses.dataclass(frozen=True)
class BatchProfile:
    """Batch sizes of a TensorRT optimisation profile: ``min <= opt <= max``, all >= 1."""
    min: int
    opt: int
    max: int

    def __post_init__(self):
        for n in ("min", "opt", "max"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"batch profile: `{n}` must be an int >= 1, got {v!r}")
        if not self.min <= self.opt <= self.max:
            raise ValueError(f"batch profile must satisfy min <= opt <= max, got "
                             f"{self.min},{self.opt},{self.max}")

    def shapes(self, chw: Sequence[int]) -> Tuple[Tuple[int, ...], ...]:
        """(min, opt, max) full input shapes for per-sample shape ``chw``."""
        chw = tuple(int(d) for d in chw)
        return tuple((b,) + chw for b in (self.min, self.opt, self.max))

    def __str__(self) -> str:
        return f"{self.min},{self.opt},{self.max}"


def parse_batch_profile(text: Union[str, Sequence[int], BatchProfile]) -> BatchProfile:
    """``"1,8,64"`` (min,opt,max), ``"8"`` (fixed: 8,8,8) or a 3-sequence -> BatchProfile.
    Raises ValueError naming ``--batch`` on anything else."""
    if isinstance(text, BatchProfile):
        return text
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")]
        try:
            vals = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"argument `batch` (--batch) must be 'min,opt,max' or one batch "
                             f"size, integers, got {text!r}") from None
    else:
        vals = list(text)
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise ValueError(f"argument `batch` (--batch) must be 'min,opt,max' or one batch size, "
                         f"got {text!r}")
    try:
        return BatchProfile(*vals)
    except ValueError as e:
        raise ValueError(f"argument `batch` (--batch): {e}") from None


def onnx_input_info(onnx_path) -> Tuple[str, List[Union[int, str]], bool]:
    """(input name, dims (int or symbolic str), has Q/DQ nodes) of an ONNX file with one
    input."""
    import onnx

    m = onnx.load(os.fspath(onnx_path), load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise ValueError(f"{onnx_path}: expected one input (the crops), found "
                         f"{[i.name for i in ins]}")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in ins[0].type.tensor_type.shape.dim]
    return ins[0].name, dims, has_qdq(m)


def validate_profile(profile: BatchProfile, dims: Sequence[Union[int, str]]) -> None:
    """Check a batch profile against the ONNX input dims (B, C, H, W): a static batch must
    equal every profile entry; the other dims must be static."""
    if len(dims) != 4:
        raise ValueError(f"the ONNX input must be (B, C, H, W), got dims {list(dims)}")
    if not all(isinstance(d, int) and d > 0 for d in dims[1:]):
        raise ValueError(f"the ONNX input must have static C, H, W for TensorRT profiles, got "
                         f"{list(dims)}")
    b = dims[0]
    if isinstance(b, int) and b > 0 and not profile.min == profile.opt == profile.max == b:
        raise ValueError(f"argument `batch` (--batch) {profile} does not fit the ONNX file's "
                         f"static batch {b}: export with a dynamic batch or pass --batch {b}")


# ---------------------------------------------------------------------------- cache key
def gpu_info(device: int = 0) -> Dict[str, str]:
    """``{"name", "compute_capability"}`` of CUDA device ``device`` (through torch, else
    pycuda). RuntimeError when neither sees a GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(device)
            return {"name": torch.cuda.get_device_name(device),
                    "compute_capability": f"{major}.{minor}"}
    except ImportError:
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        d = cuda.Device(device)
        major, minor = d.compute_capability()
        return {"name": d.name(), "compute_capability": f"{major}.{minor}"}
    except ImportError:
        pass
    raise RuntimeError("no CUDA GPU is visible (torch.cuda and pycuda found none): a TensorRT "
                       "engine is built for, and keyed by, a specific GPU")


def _canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def engine_cache_key(onnx_sha256: str, tensorrt: str, gpu_name: str, compute_capability: str,
                     precision: str, input_name: str, profile_shapes: Sequence[Sequence[int]],
                     options: Optional[Dict[str, Any]] = None) -> Tuple[str, Dict[str, Any]]:
    """The engine cache key and the components it hashes.

    Args:
        onnx_sha256: hex sha256 of the ONNX file's bytes.
        tensorrt: TensorRT version string (``tensorrt.__version__``).
        gpu_name, compute_capability: e.g. ``"NVIDIA H100 80GB HBM3"``, ``"9.0"``.
        precision: e.g. ``"fp16"``, ``"int8-qdq"``, ``"int8-calib:<calibration sha>"``.
        input_name: the profile's input tensor.
        profile_shapes: (min, opt, max) input shapes.
        options: other build settings that change the engine (strongly typed, ...),
            JSON-serialisable.

    Returns:
        (hex sha256 of the canonical JSON of the components, the components dict).
    """
    for n, v in (("onnx_sha256", onnx_sha256), ("tensorrt", tensorrt), ("gpu_name", gpu_name),
                 ("compute_capability", compute_capability), ("precision", precision),
                 ("input_name", input_name)):
        if not isinstance(v, str) or not v:
            raise ValueError(f"engine_cache_key: argument `{n}` must be a non-empty string, "
                             f"got {v!r}")
    if len(onnx_sha256) != 64 or any(c not in "0123456789abcdef" for c in onnx_sha256.lower()):
        raise ValueError(f"engine_cache_key: argument `onnx_sha256` must be a hex sha256, got "
                         f"{onnx_sha256!r}")
    shapes = [list(map(int, s)) for s in profile_shapes]
    if len(shapes) != 3 or len({len(s) for s in shapes}) != 1:
        raise ValueError(f"engine_cache_key: argument `profile_shapes` must be (min, opt, max) "
                         f"shapes of one rank, got {profile_shapes!r}")
    comp = {"format": KEY_FORMAT, "onnx_sha256": onnx_sha256.lower(), "tensorrt": tensorrt,
            "gpu": gpu_name, "compute_capability": compute_capability,
            "precision": precision,
            "profile": {"input": input_name, "min": shapes[0], "opt": shapes[1],
                        "max": shapes[2]},
            "options": dict(options or {})}
    try:
        text = _canonical_json(comp)
    except (TypeError, ValueError) as e:
        raise ValueError(f"engine_cache_key: argument `options` must be JSON-serialisable: "
                         f"{e}") from e
    return hashlib.sha256(text.encode("ascii")).hexdigest(), comp


# ---------------------------------------------------------------------------- engine cache
class EngineCache:
    """A directory of serialized engines with a JSON index.

    Layout: ``<key>.engine`` (the plan), ``<key>.json`` (its components, size, sha256 of the
    bytes, creation time) and ``index.json`` (``{"format", "version", "entries": {key:
    entry}}``, a summary of the sidecars). Every file is written atomically (temporary
    file + ``os.replace``); writers take an exclusive ``fcntl`` lock on ``.lock``.

    Reads verify the engine's sha256; a missing or corrupt engine is dropped from the index
    and reported as a miss. An unreadable or invalid ``index.json`` is rebuilt from the
    sidecars (with a warning), so a crash between writes loses nothing that was complete.
    """

    INDEX = "index.json"

    def __init__(self, directory: Union[str, os.PathLike]):
        self.dir = pathlib.Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(f"argument `cache_dir` (--cache-dir): {self.dir} exists "
                                     f"and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recovered = False

    # -------------------------------------------------------------- locking / index
    @contextlib.contextmanager
    def _lock(self):
        try:
            import fcntl
        except ImportError:  # pragma: no cover - non-POSIX: atomic renames only
            yield
            return
        with open(self.dir / ".lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _engine_path(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}.engine"

    def _sidecar_path(self, key: str) -> pathlib.Path:
        return self.dir / f"{key}.json"

    @staticmethod
    def _check_key(key: str) -> str:
        if not isinstance(key, str) or len(key) != 64 or \
                any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"EngineCache: a key is a lowercase hex sha256 (engine_cache_key), "
                             f"got {key!r}")
        return key

    def _valid_entry(self, key, e) -> bool:
        return (isinstance(e, dict) and e.get("file") == f"{key}.engine"
                and isinstance(e.get("sha256"), str) and isinstance(e.get("size"), int)
                and isinstance(e.get("components"), dict))

    def _rebuild_index(self) -> Dict[str, dict]:
        entries = {}
        for side in sorted(self.dir.glob("*.json")):
            if side.name == self.INDEX:
                continue
            key = side.stem
            try:
                self._check_key(key)
                e = json.loads(side.read_text())
            except (ValueError, OSError):
                continue
            if self._valid_entry(key, e) and self._engine_path(key).is_file():
                entries[key] = e
        return entries

    def _read_index(self) -> Dict[str, dict]:
        p = self.dir / self.INDEX
        if not p.exists():
            return self._rebuild_index()
        try:
            data = json.loads(p.read_text())
            if not (isinstance(data, dict) and data.get("format") == CACHE_FORMAT
                    and data.get("version") == CACHE_VERSION
                    and isinstance(data.get("entries"), dict)):
                raise ValueError("not a pyface3d engine-cache index of version "
                                 f"{CACHE_VERSION}")
            entries = data["entries"]
            for k, e in entries.items():
                self._check_key(k)
                if not self._valid_entry(k, e):
                    raise ValueError(f"invalid entry {k[:12]}")
            return entries
        except (ValueError, OSError) as e:
            warnings.warn(f"engine cache {self.dir}: {self.INDEX} is unreadable ({e}); rebuilt "
                          f"from the per-engine .json files", RuntimeWarning, stacklevel=3)
            self.recovered = True
            entries = self._rebuild_index()
            self._write_index(entries)
            return entries

    def _write_index(self, entries: Dict[str, dict]) -> None:
        data = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
                "entries": dict(sorted(entries.items()))}
        atomic_write_bytes(self.dir / self.INDEX, (json.dumps(data, indent=1) + "\n").encode())

    # -------------------------------------------------------------- public API
    def entries(self) -> Dict[str, dict]:
        """``{key: entry}`` of the index (after recovery when needed)."""
        with self._lock():
            return self._read_index()

    def path(self, key: str) -> pathlib.Path:
        """Where the engine of ``key`` is (or would be) stored."""
        return self._engine_path(self._check_key(key))

    def get(self, key: str) -> Optional[bytes]:
        """The engine bytes for ``key``, or None (a miss). A listed engine whose file is
        missing or whose sha256 does not match is removed and counts as a miss."""
        self._check_key(key)
        with self._lock():
            entries = self._read_index()
            e = entries.get(key)
            if e is None:
                return None
            try:
                data = self._engine_path(key).read_bytes()
            except OSError:
                data = None
            if data is None or len(data) != e["size"] or \
                    hashlib.sha256(data).hexdigest() != e["sha256"]:
                warnings.warn(f"engine cache {self.dir}: engine {key[:12]} is missing or "
                              f"corrupt; dropped (it will be rebuilt)", RuntimeWarning,
                              stacklevel=2)
                self._drop(entries, key)
                return None
            return data

    def _drop(self, entries, key) -> None:
        entries.pop(key, None)
        for p in (self._engine_path(key), self._sidecar_path(key)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self._write_index(entries)

    def put(self, key: str, data: bytes, components: Dict[str, Any]) -> pathlib.Path:
        """Store ``data`` under ``key`` (engine first, then its sidecar, then the index;
        each write atomic). Returns the engine's path."""
        self._check_key(key)
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) == 0:
            raise ValueError("EngineCache.put: argument `data` must be non-empty bytes (a "
                             "serialized engine)")
        data = bytes(data)
        entry = {"file": f"{key}.engine", "sha256": hashlib.sha256(data).hexdigest(),
                 "size": len(data),
                 "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 "components": components}
        with self._lock():
            atomic_write_bytes(self._engine_path(key), data)
            atomic_write_bytes(self._sidecar_path(key),
                               (json.dumps(entry, indent=1, sort_keys=True) + "\n").encode())
            entries = self._read_index()
            entries[key] = entry
            self._write_index(entries)
        return self._engine_path(key)

    def remove(self, key: str) -> bool:
        """Delete an entry; True if it existed."""
        self._check_key(key)
        with self._lock():
            entries = self._read_index()
            existed = key in entries
            self._drop(entries, key)
            return existed

    def get_or_build(self, key: str, components: Dict[str, Any],
                     build: Callable[[], bytes]) -> Tuple[bytes, bool]:
        """(engine bytes, hit?): the cached engine, or ``build()`` stored under ``key``."""
        data = self.get(key)
        if data is not None:
            return data, True
        data = build()
        self.put(key, data, components)
        return bytes(data), False


# ---------------------------------------------------------------------------- calibration
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


class CalibrationBatches:
    """Batches of normalised crops for INT8 calibration.

    ``source``: a directory of crops (``*.png``/``*.jpg``/``*.jpeg``/``*.bmp``, read as BGR
    by OpenCV, each ``size x size``; normalised ``(x - 127.5) / 128``) and/or ``*.npy``
    arrays (``(3, size, size)`` or ``(N, 3, size, size)`` float32, already normalised),
    in sorted file order; or a float32 array ``(N, 3, size, size)``.

    Iterating yields ``(batch_size, 3, size, size)`` float32 C-contiguous arrays; with
    ``max_batches`` at most that many. The last ``N % batch_size`` crops do not fill a
    batch (TensorRT calibrates at one batch size): they are left out and counted in
    ``left_out`` (``len()`` and :meth:`describe` say so). Wrong sizes, channels or dtypes
    raise ValueError naming the file.
    """

    def __init__(self, source, batch_size: int, size: int = 120,
                 max_batches: Optional[int] = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"argument `batch_size` must be an int >= 1, got {batch_size!r}")
        if max_batches is not None and (isinstance(max_batches, bool) or
                                        not isinstance(max_batches, int) or max_batches < 1):
            raise ValueError(f"argument `max_batches` must be an int >= 1 or None, got "
                             f"{max_batches!r}")
        self.batch_size = batch_size
        self.size = size
        self.max_batches = max_batches
        self.array: Optional[np.ndarray] = None
        self.files: List[pathlib.Path] = []
        if isinstance(source, np.ndarray):
            self.array = self._check_array(source, "argument `source`")
            counts = [len(self.array)]
        else:
            d = pathlib.Path(source)
            if not d.is_dir():
                raise ValueError(f"argument `calib` (--calib): {d} is not a directory of crops")
            self.files = sorted(p for p in d.iterdir() if p.is_file() and
                                p.suffix.lower() in _IMAGE_EXT + (".npy",))
            if not self.files:
                raise ValueError(f"argument `calib` (--calib): {d} holds no crops "
                                 f"({', '.join(_IMAGE_EXT)} or .npy)")
            counts = [self._count(p) for p in self.files]
        self.num_crops = int(sum(counts))
        full = self.num_crops // batch_size
        if full == 0:
            raise ValueError(f"calibration set: {self.num_crops} crops do not fill one batch of "
                             f"{batch_size}")
        self.num_batches = full if max_batches is None else min(full, max_batches)
        self.left_out = self.num_crops - self.num_batches * batch_size

    def _check_array(self, a, where: str) -> np.ndarray:
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            raise ValueError(f"{where}: expected float32 crops, got "
                             f"{getattr(a, 'dtype', type(a).__name__)}")
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"{where}: expected shape (N, 3, {self.size}, {self.size}) or "
                             f"(3, {self.size}, {self.size}), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"{where}: contains NaN or Inf")
        return a

    def _count(self, p: pathlib.Path) -> int:
        if p.suffix.lower() == ".npy":
            a = np.load(p, mmap_mode="r", allow_pickle=False)
            return 1 if a.ndim == 3 else int(a.shape[0])
        return 1

    def _load(self, p: pathlib.Path) -> np.ndarray:
        if p.suffix.lower() == ".npy":
            return self._check_array(np.load(p, allow_pickle=False), str(p))
        import cv2

        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"calibration set: cannot read image {p}")
        if img.shape[:2] != (self.size, self.size):
            raise ValueError(f"calibration set: {p} is {img.shape[1]}x{img.shape[0]}, expected "
                             f"{self.size}x{self.size} crops (crop with pyface3d.data.roi "
                             f"first)")
        x = (img.astype(np.float32) - 127.5) / 128.0
        return np.ascontiguousarray(x.transpose(2, 0, 1))[None]

    def _crops(self) -> Iterator[np.ndarray]:
        if self.array is not None:
            yield self.array
            return
        for p in self.files:
            yield self._load(p)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[np.ndarray]:
        pending: List[np.ndarray] = []
        have = done = 0
        for chunk in self._crops():
            start = 0
            while start < len(chunk):
                take = min(self.batch_size - have, len(chunk) - start)
                pending.append(chunk[start:start + take])
                have += take
                start += take
                if have == self.batch_size:
                    batch = pending[0] if len(pending) == 1 else np.concatenate(pending, 0)
                    yield np.ascontiguousarray(batch)
                    done += 1
                    if done >= self.num_batches:
                        return
                    pending, have = [], 0

    def fingerprint(self) -> str:
        """sha256 over the crops that calibration reads (their order, shapes and bytes) and
        the batching: part of the engine cache key of calibrated INT8 engines (computed
        once)."""
        if getattr(self, "_fingerprint", None) is not None:
            return self._fingerprint
        h = hashlib.sha256(f"calib|{self.batch_size}|{self.num_batches}\n".encode())
        for b in self:
            h.update(b.tobytes())
        self._fingerprint = h.hexdigest()
        return self._fingerprint

    def describe(self) -> str:
        return (f"{self.num_crops} crops -> {self.num_batches} batches of {self.batch_size}"
                + (f" ({self.left_out} crops left out: they do not fill a batch or exceed "
                   f"max_batches)" if self.left_out else ""))


def make_entropy_calibrator(batches: CalibrationBatches, cache_file=None, device: int = 0):
    """A ``tensorrt.IInt8EntropyCalibrator2`` feeding ``batches`` from one CUDA buffer (a
    torch tensor). ``cache_file``: TensorRT's calibration table, read if present, written
    after calibration (atomically). TensorRT >= 10.1 deprecates implicit (calibrated) INT8
    in favour of explicit Q/DQ; both still build in TensorRT 10."""
    trt = require_tensorrt()
    import torch

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._it = iter(batches)
            self._buf = torch.empty((batches.batch_size, 3, batches.size, batches.size),
                                    dtype=torch.float32, device=f"cuda:{device}")
            self._cache = pathlib.Path(cache_file) if cache_file else None
            self.seen = 0

        def get_batch_size(self):
            return batches.batch_size

        def get_batch(self, names):
            try:
                b = next(self._it)
            except StopIteration:
                return None
            self._buf.copy_(torch.from_numpy(b))
            torch.cuda.synchronize(self._buf.device)
            self.seen += 1
            return [int(self._buf.data_ptr())]

        def read_calibration_cache(self):
            if self._cache is not None and self._cache.is_file():
                return self._cache.read_bytes()
            return None

        def write_calibration_cache(self, cache):
            if self._cache is not None:
                atomic_write_bytes(self._cache, bytes(cache))

    return _Calibrator()


# ---------------------------------------------------------------------------- building
def has_qdq(model) -> bool:
    """Does the ONNX model (ModelProto) hold QuantizeLinear / DequantizeLinear nodes
    (explicit quantization)?"""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def resolve_precision(precision: str, qdq: bool, calibration: Optional[CalibrationBatches],
                      fp16_graph: bool) -> Tuple[str, Dict[str, Any]]:
    """The cache-key precision string and the build options for a request.

    ``fp32``; ``fp16`` (builder flag FP16; an fp16-exported graph is built strongly typed
    instead, its types decide); ``int8``: explicit quantization when the graph has Q/DQ
    nodes (``int8-qdq``; flags INT8 + FP16), else a calibrator over ``calibration``
    (``int8-calib:<fingerprint>``, flags INT8 + FP16). Raises ValueError for int8 with
    neither, or calibration data without int8."""
    if precision not in PRECISIONS:
        raise ValueError(f"argument `precision` must be one of {list(PRECISIONS)}, got "
                         f"{precision!r}")
    if calibration is not None and precision != "int8":
        raise ValueError("argument `calib` (--calib) is only used with --int8")
    if fp16_graph and precision != "fp16":
        raise ValueError(f"the ONNX file was exported with --fp16 (float16 graph): build it "
                         f"with --fp16 (strongly typed), not {precision}")
    opts: Dict[str, Any] = {"strongly_typed": bool(fp16_graph)}
    if precision == "fp32":
        return "fp32", opts
    if precision == "fp16":
        return "fp16", opts
    if qdq:
        if calibration is not None:
            raise ValueError("argument `calib` (--calib): the ONNX file already holds Q/DQ "
                             "nodes (explicit quantization); drop --calib")
        return "int8-qdq", opts
    if calibration is None:
        raise ValueError("--int8 needs calibration crops (--calib DIR) or an ONNX file with "
                         "Q/DQ nodes (explicit quantization)")
    return f"int8-calib:{calibration.fingerprint()}", opts


#: ONNX node-name prefix of the reconstruction head (torch module scope ``head``)
HEAD_SCOPE = "/head/"


def pin_head_fp32(trt, network) -> int:
    """Keep the reconstruction head's layers in float32 in a weakly typed FP16/INT8 build:
    its bases are micrometre-scale (|mean| ~ 1.6e5 > float16's 65504). Sets
    ``layer.precision`` and the float outputs' types of every layer whose name holds
    :data:`HEAD_SCOPE`; returns how many (the caller sets OBEY_PRECISION_CONSTRAINTS)."""
    floats = (trt.float32, trt.float16)
    n = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if HEAD_SCOPE not in layer.name:
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in floats:
                layer.set_output_type(j, trt.float32)
        n += 1
    return n


def build_serialized_engine(onnx_path, precision: str = "fp16",
                            profile: BatchProfile = BatchProfile(1, 1, 1),
                            workspace_bytes: int = 1 << 30,
                            timing_cache: Optional[Union[str, os.PathLike]] = None,
                            calibration: Optional[CalibrationBatches] = None,
                            calibration_cache: Optional[Union[str, os.PathLike]] = None,
                            verbose: bool = False) -> bytes:
    """Parse ``onnx_path`` and build a serialized TensorRT 10 engine.

    Network: explicit batch (TensorRT 10's only mode; flags 0), or STRONGLY_TYPED for an
    fp16-exported graph. Config: workspace pool limit, FP16 / INT8 flags (see
    :func:`resolve_precision`; the head's layers pinned to float32 with
    OBEY_PRECISION_CONSTRAINTS, :func:`pin_head_fp32`), one optimisation profile
    ``profile`` on the input (also the calibration profile), ``timing_cache`` loaded if the
    file exists and saved (atomically) after the build. Raises RuntimeError with the
    parser's errors or when the build fails.
    """
    trt = require_tensorrt()
    name, dims, qdq = onnx_input_info(onnx_path)
    validate_profile(profile, dims)
    from .export import metadata

    fp16_graph = metadata(onnx_path).get("pyface3d.fp16") == "true"
    _, opts = resolve_precision(precision, qdq, calibration, fp16_graph)
    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if opts["strongly_typed"]:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.fspath(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if not opts["strongly_typed"]:  # strongly typed networks take no precision flags
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        if precision != "fp32" and pin_head_fp32(trt, network):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    prof = builder.create_optimization_profile()
    mn, op, mx = profile.shapes(dims[1:])
    prof.set_shape(name, mn, op, mx)
    config.add_optimization_profile(prof)
    if precision == "int8" and not qdq:
        config.int8_calibrator = make_entropy_calibrator(calibration, calibration_cache)
        config.set_calibration_profile(prof)
    cache = None
    if timing_cache is not None:
        tc = pathlib.Path(timing_cache)
        cache = config.create_timing_cache(tc.read_bytes() if tc.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path} "
                           f"({precision}, batch {profile}); rerun with verbose=True")
    if cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(plan)


def build_engine_cached(onnx_path, cache_dir, precision: str = "fp16",
                        profile: BatchProfile = BatchProfile(1, 1, 1),
                        calibration: Optional[CalibrationBatches] = None,
                        workspace_bytes: int = 1 << 30, device: int = 0,
                        builder: Optional[Callable[..., bytes]] = None,
                        tensorrt_version_str: Optional[str] = None,
                        gpu: Optional[Dict[str, str]] = None) -> Tuple[bytes, bool, str]:
    """Engine for ``onnx_path`` through the :class:`EngineCache` in ``cache_dir``.

    The key (:func:`engine_cache_key`) hashes the ONNX file's sha256, the TensorRT version,
    the GPU name and compute capability, the precision (with the calibration set's
    fingerprint) and the profile shapes. The timing cache is ``<cache_dir>/timing-<TensorRT
    version>-<compute capability>.cache``; calibration tables ``calib-<key>.cache``.
    ``builder`` / ``tensorrt_version_str`` / ``gpu`` replace TensorRT and the GPU query
    (tests inject fakes). Returns (engine bytes, cache hit?, key).
    """
    from .export import file_sha256, metadata

    name, dims, qdq = onnx_input_info(onnx_path)
    validate_profile(profile, dims)
    fp16_graph = metadata(onnx_path).get("pyface3d.fp16") == "true"
    prec_key, opts = resolve_precision(precision, qdq, calibration, fp16_graph)
    version = tensorrt_version_str or tensorrt_version()
    g = gpu or gpu_info(device)
    key, comp = engine_cache_key(file_sha256(onnx_path), version, g["name"],
                                 g["compute_capability"], prec_key, name,
                                 profile.shapes(dims[1:]), opts)
    cache = EngineCache(cache_dir)
    build = builder or build_serialized_engine
    timing = cache.dir / f"timing-{version}-{g['compute_capability']}.cache"
    calib_cache = cache.dir / f"calib-{key}.cache" if calibration is not None else None

    def _build() -> bytes:
        return build(onnx_path, precision=precision, profile=profile,
                     workspace_bytes=workspace_bytes, timing_cache=timing,
                     calibration=calibration, calibration_cache=calib_cache)

    data, hit = cache.get_or_build(key, comp, _build)
    return data, hit, key
