"""The 3D morphable model container and our own ``.npz`` format.

A :class:`MorphableModel` holds torch tensors in the 3DDFA layout:

    S = mean + id_basis @ a_id + exp_basis @ a_exp          (3N,), interleaved x0, y0, z0, x1, ...
    V = P[:, :3] @ S_v + P[:, 3]                             P = [f*R | t], row-major 3x4

and a parameter vector ``params = [P (12, row-major), a_id (I), a_exp (E)]`` of width
``12 + I + E``. Networks predict whitened parameters; ``param = out * param_std + param_mean``.

Checksum: :meth:`MorphableModel.sha256` hashes the arrays that define the geometry and the
parameterisation (see :data:`HASH_FIELDS`) in their canonical dtype (float32 / int32 / int64,
little-endian, C order), each preceded by its name, dtype and shape. It does not depend on the
device, on a float64 copy (``to(dtype=torch.float64)``), on ``name``, ``metadata`` or the UVs,
so trained weights can record it and refuse a different basis.

File format (``.npz``, written with ``numpy.savez_compressed``, read with
``allow_pickle=False``): see docs/morphable.md, "Our .npz format".
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

__all__ = ["MorphableModel", "FORMAT_NAME", "FORMAT_VERSION", "HASH_FIELDS", "NUM_POSE_PARAMS"]

FORMAT_NAME = "pyface3d-morphable"
FORMAT_VERSION = 1
NUM_POSE_PARAMS = 12
_HASH_HEADER = b"pyface3d-morphable-sha256-v1\n"

# name -> canonical numpy dtype. Hash order is this order.
_FLOAT_FIELDS = ("mean", "id_basis", "exp_basis", "param_mean", "param_std")
HASH_FIELDS = (("mean", "<f4"), ("id_basis", "<f4"), ("exp_basis", "<f4"),
               ("triangles", "<i4"), ("landmarks68", "<i8"),
               ("param_mean", "<f4"), ("param_std", "<f4"))
_OPTIONAL_FIELDS = (("uvs", "<f4"), ("uv_triangles", "<i4"))
_ARRAY_KEYS = tuple(n for n, _ in HASH_FIELDS) + tuple(n for n, _ in _OPTIONAL_FIELDS)
_META_KEYS = ("format", "format_version", "name", "sha256", "metadata_json")
#: fields that may also be stored as float16 (a model whose bases are exactly float16 values,
#: see :meth:`MorphableModel.quantized`); loading widens them to float32 exactly
_HALF_OK = ("id_basis", "exp_basis")

PathLike = Union[str, os.PathLike]


def _as_tensor(name: str, value: Any, kind: str) -> torch.Tensor:
    """numpy / tensor / sequence -> tensor; ``kind`` 'f' (floating) or 'i' (integer)."""
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"MorphableModel: argument `{name}` must be an array or tensor, "
                            f"got {type(value).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"MorphableModel: argument `{name}` must be numeric, got numpy "
                            f"dtype {arr.dtype}")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if kind == "f":
        if not t.is_floating_point():
            raise TypeError(f"MorphableModel: argument `{name}` must be floating point, got "
                            f"{t.dtype}")
    else:
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"MorphableModel: argument `{name}` must be an integer array, got "
                            f"{t.dtype}")
    return t


@dataclass(eq=False)
class MorphableModel:
    """A linear 3D morphable model (3DDFA conventions).

    Attributes:
        mean: (3N,) float32 mean shape, interleaved x0, y0, z0, x1, ...
        id_basis: (3N, I) float32 identity basis (rows interleaved like ``mean``).
        exp_basis: (3N, E) float32 expression basis.
        triangles: (F, 3) int32 vertex ids in [0, N).
        landmarks68: (68,) int64 vertex ids of the 68 iBUG landmarks (iBUG order).
        param_mean: (12 + I + E,) float32 whitening mean.
        param_std: (12 + I + E,) float32 whitening std (finite, > 0).
        name: a label (not part of the checksum).
        uvs: optional (U, 2) float32 texture coordinates.
        uv_triangles: optional (F, 3) int32 ids into ``uvs``, one row per triangle (required
            together with ``uvs``).
        metadata: JSON-serialisable dict (units, source, licence, builder settings, ...).

    Floating fields are stored as float32 (inputs of other floating dtypes are converted),
    or all as float64 when ``mean`` is float64 (``to(dtype=torch.float64)``). Integer fields
    are converted to int32 (triangles, uv_triangles) / int64 (landmarks68). Bad shapes or
    values raise ValueError / TypeError / IndexError naming the field.
    """

    mean: torch.Tensor
    id_basis: torch.Tensor
    exp_basis: torch.Tensor
    triangles: torch.Tensor
    landmarks68: torch.Tensor
    param_mean: torch.Tensor
    param_std: torch.Tensor
    name: str = "morphable"
    uvs: Optional[torch.Tensor] = None
    uv_triangles: Optional[torch.Tensor] = None
    metadata: Dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        mean = _as_tensor("mean", self.mean, "f")
        fdtype = torch.float64 if mean.dtype == torch.float64 else torch.float32
        device = mean.device
        for n in _FLOAT_FIELDS:
            t = _as_tensor(n, getattr(self, n), "f")
            if t.device != device:
                raise RuntimeError(f"MorphableModel: argument `{n}` is on {t.device} but "
                                   f"`mean` is on {device}")
            object.__setattr__(self, n, t.to(fdtype).contiguous())
        for n, dt in (("triangles", torch.int32), ("landmarks68", torch.int64)):
            t = _as_tensor(n, getattr(self, n), "i")
            if t.device != device:
                raise RuntimeError(f"MorphableModel: argument `{n}` is on {t.device} but "
                                   f"`mean` is on {device}")
            object.__setattr__(self, n, t.to(dt).contiguous())
        if not isinstance(self.name, str):
            raise TypeError(f"MorphableModel: argument `name` must be a str, got "
                            f"{type(self.name).__name__}")
        if not isinstance(self.metadata, dict):
            raise TypeError(f"MorphableModel: argument `metadata` must be a dict, got "
                            f"{type(self.metadata).__name__}")
        try:
            json.dumps(self.metadata, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"MorphableModel: argument `metadata` must be JSON-serialisable "
                             f"(str keys; str, number, bool, None, list, dict values): {exc}") \
                from exc

        m = self.mean
        if m.dim() != 1 or m.shape[0] % 3 != 0:
            raise ValueError(f"MorphableModel: argument `mean` must have shape (3N,), got "
                             f"{tuple(m.shape)}")
        n3 = m.shape[0]
        N = n3 // 3
        for n in ("id_basis", "exp_basis"):
            b = getattr(self, n)
            if b.dim() != 2 or b.shape[0] != n3:
                raise ValueError(f"MorphableModel: argument `{n}` must have shape (3N, K) = "
                                 f"({n3}, K), got {tuple(b.shape)}")
        P = NUM_POSE_PARAMS + self.id_basis.shape[1] + self.exp_basis.shape[1]
        for n in ("param_mean", "param_std"):
            p = getattr(self, n)
            if p.shape != (P,):
                raise ValueError(f"MorphableModel: argument `{n}` must have shape "
                                 f"(12 + I + E,) = ({P},), got {tuple(p.shape)}")
        for n in _FLOAT_FIELDS:
            if not bool(torch.isfinite(getattr(self, n)).all()):
                raise ValueError(f"MorphableModel: argument `{n}` contains NaN or Inf")
        if not bool((self.param_std > 0).all()):
            bad = torch.nonzero(self.param_std <= 0).flatten()[:5].tolist()
            raise ValueError(f"MorphableModel: argument `param_std` must be > 0 everywhere "
                             f"(entries {bad} are not)")
        t = self.triangles
        if t.dim() != 2 or t.shape[1] != 3:
            raise ValueError(f"MorphableModel: argument `triangles` must have shape (F, 3), got "
                             f"{tuple(t.shape)}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= N):
            raise IndexError(f"MorphableModel: argument `triangles` has vertex ids outside "
                             f"[0, {N}) (min {int(t.min())}, max {int(t.max())})")
        lm = self.landmarks68
        if lm.shape != (68,):
            raise ValueError(f"MorphableModel: argument `landmarks68` must have shape (68,), "
                             f"got {tuple(lm.shape)}")
        if int(lm.min()) < 0 or int(lm.max()) >= N:
            raise IndexError(f"MorphableModel: argument `landmarks68` has vertex ids outside "
                             f"[0, {N}) (min {int(lm.min())}, max {int(lm.max())})")
        if (self.uvs is None) != (self.uv_triangles is None):
            raise ValueError("MorphableModel: arguments `uvs` and `uv_triangles` must be given "
                             "together (or neither)")
        if self.uvs is not None:
            uv = _as_tensor("uvs", self.uvs, "f").to(device=device, dtype=fdtype).contiguous()
            ut = _as_tensor("uv_triangles", self.uv_triangles, "i").to(
                device=device, dtype=torch.int32).contiguous()
            if uv.dim() != 2 or uv.shape[1] != 2:
                raise ValueError(f"MorphableModel: argument `uvs` must have shape (U, 2), got "
                                 f"{tuple(uv.shape)}")
            if ut.shape != t.shape:
                raise ValueError(f"MorphableModel: argument `uv_triangles` must have the shape "
                                 f"of `triangles` {tuple(t.shape)}, got {tuple(ut.shape)}")
            if ut.numel() and (int(ut.min()) < 0 or int(ut.max()) >= uv.shape[0]):
                raise IndexError(f"MorphableModel: argument `uv_triangles` has ids outside "
                                 f"[0, {uv.shape[0]})")
            if not bool(torch.isfinite(uv).all()):
                raise ValueError("MorphableModel: argument `uvs` contains NaN or Inf")
            object.__setattr__(self, "uvs", uv)
            object.__setattr__(self, "uv_triangles", ut)

    # ------------------------------------------------------------------ properties
    @property
    def N(self) -> int:
        """Number of vertices."""
        return self.mean.shape[0] // 3

    @property
    def I(self) -> int:  # noqa: E743 - the conventional name
        """Number of identity components."""
        return self.id_basis.shape[1]

    @property
    def E(self) -> int:
        """Number of expression components."""
        return self.exp_basis.shape[1]

    @property
    def num_params(self) -> int:
        """Width of the parameter vector, 12 + I + E."""
        return NUM_POSE_PARAMS + self.I + self.E

    @property
    def F(self) -> int:
        """Number of triangles."""
        return self.triangles.shape[0]

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def dtype(self) -> torch.dtype:
        return self.mean.dtype

    # ------------------------------------------------------------------ checksum
    def canonical_arrays(self) -> Dict[str, np.ndarray]:
        """The arrays in their canonical on-disk form (numpy, CPU, canonical dtypes)."""
        out = {}
        for n, dt in HASH_FIELDS + _OPTIONAL_FIELDS:
            t = getattr(self, n)
            if t is None:
                continue
            a = t.detach().cpu()
            if a.is_floating_point():
                a = a.to(torch.float32)
            out[n] = np.ascontiguousarray(a.numpy().astype(dt, copy=False))
        return out

    def sha256(self) -> str:
        """Hex sha256 of the model's arrays (see module doc; device and float64-copy
        independent; ``name``, ``metadata`` and UVs are not included)."""
        arrays = self.canonical_arrays()
        h = hashlib.sha256(_HASH_HEADER)
        for n, dt in HASH_FIELDS:
            a = arrays[n]
            h.update(f"{n}|{dt}|{','.join(str(s) for s in a.shape)}\n".encode("ascii"))
            h.update(a.tobytes(order="C"))
        return h.hexdigest()

    # ------------------------------------------------------------------ conversion
    def to(self, device: Union[str, torch.device, None] = None,
           dtype: Optional[torch.dtype] = None) -> "MorphableModel":
        """A copy on ``device`` with floating fields in ``dtype`` (float32 or float64)."""
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise TypeError(f"MorphableModel.to: argument `dtype` must be torch.float32 or "
                            f"torch.float64, got {dtype}")
        changes = {}
        for n in _FLOAT_FIELDS + ("uvs",):
            t = getattr(self, n)
            if t is not None:
                changes[n] = t.to(device=device, dtype=dtype or t.dtype)
        for n in ("triangles", "landmarks68", "uv_triangles"):
            t = getattr(self, n)
            if t is not None:
                changes[n] = t.to(device=device)
        changes["metadata"] = json.loads(json.dumps(self.metadata))
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ geometry
    def reconstruct(self, params: torch.Tensor, landmarks_only: bool = False) -> torch.Tensor:
        """Vertices from de-whitened parameters.

        Args:
            params: (B, 12 + I + E) ``[P row-major (12), a_id (I), a_exp (E)]``, on the
                model's device and dtype (see :func:`pyface3d.morphable.params.unwhiten`
                for network outputs).
            landmarks_only: return only the 68 landmark vertices.

        Returns:
            (B, N, 3), or (B, 68, 3) with ``landmarks_only``; in the model frame with the
            pose applied (3DDFA: y up; see docs/morphable.md for the crop mapping).
        """
        from ..ops.morphable import morphable_reconstruct_params
        if not isinstance(params, torch.Tensor):
            raise TypeError(f"MorphableModel.reconstruct: argument `params` must be a tensor, "
                            f"got {type(params).__name__}")
        if params.dim() != 2 or params.shape[1] != self.num_params:
            raise ValueError(f"MorphableModel.reconstruct: argument `params` must have shape "
                             f"(B, 12 + I + E) = (B, {self.num_params}), got "
                             f"{tuple(params.shape)}")
        if params.device != self.device:
            raise RuntimeError(f"MorphableModel.reconstruct: argument `params` is on "
                               f"{params.device} but the model is on {self.device} "
                               f"(use model.to(device))")
        if params.dtype != self.dtype:
            raise TypeError(f"MorphableModel.reconstruct: argument `params` has dtype "
                            f"{params.dtype} but the model is {self.dtype}")
        ids = self.landmarks68 if landmarks_only else None
        return morphable_reconstruct_params(params, self.mean, self.id_basis, self.exp_basis,
                                            ids)

    def as_module(self, landmarks_only: bool = False):
        """An ``nn.Module`` (:class:`pyface3d.ops.MorphableReconstruct`) holding copies of the
        mean and bases as buffers (so they follow ``network.to(device)``);
        ``module(params)`` -> (B, N or 68, 3)."""
        from ..ops.morphable import MorphableReconstruct
        return MorphableReconstruct(self.mean, self.id_basis, self.exp_basis,
                                    self.landmarks68 if landmarks_only else None)

    def vertices(self, id_coeff: Optional[torch.Tensor] = None,
                 exp_coeff: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Shapes without a pose: (B, N, 3) ``mean + A_id a_id + A_exp a_exp`` (B = 1 and
        zero coefficients where both are omitted)."""
        for n, c, k in (("id_coeff", id_coeff, self.I), ("exp_coeff", exp_coeff, self.E)):
            if c is not None and (not isinstance(c, torch.Tensor) or c.dim() != 2
                                  or c.shape[1] != k):
                raise ValueError(f"MorphableModel.vertices: argument `{n}` must be a tensor of "
                                 f"shape (B, {k}), got {tuple(getattr(c, 'shape', ()))}")
        if id_coeff is not None and exp_coeff is not None and \
                id_coeff.shape[0] != exp_coeff.shape[0]:
            raise ValueError(f"MorphableModel.vertices: arguments `id_coeff` and `exp_coeff` "
                             f"have different batch sizes {id_coeff.shape[0]} and "
                             f"{exp_coeff.shape[0]}")
        B = (id_coeff.shape[0] if id_coeff is not None
             else exp_coeff.shape[0] if exp_coeff is not None else 1)
        params = torch.zeros(B, self.num_params, dtype=self.dtype, device=self.device)
        params[:, 0] = params[:, 5] = params[:, 10] = 1.0
        if id_coeff is not None:
            params[:, 12:12 + self.I] = id_coeff
        if exp_coeff is not None:
            params[:, 12 + self.I:] = exp_coeff
        return self.reconstruct(params)

    def whiten(self, params: torch.Tensor) -> torch.Tensor:
        """(B, P) parameters -> whitened ``(params - param_mean) / param_std``."""
        from .params import whiten
        return whiten(params, self.param_mean, self.param_std)

    def unwhiten(self, out: torch.Tensor) -> torch.Tensor:
        """(B, P) network output -> parameters ``out * param_std + param_mean``."""
        from .params import unwhiten
        return unwhiten(out, self.param_mean, self.param_std)

    # ------------------------------------------------------------------ files
    def quantized(self) -> "MorphableModel":
        """A copy whose identity and expression bases are rounded to float16 values (held
        as float32): what :meth:`save` with ``basis_dtype="float16"`` stores losslessly, at
        half the size. Its sha256 differs from this model's (another basis)."""
        import dataclasses
        return dataclasses.replace(
            self, id_basis=self.id_basis.detach().cpu().half().float(),
            exp_basis=self.exp_basis.detach().cpu().half().float(),
            metadata=dict(self.metadata, basis_precision="float16"))

    def save(self, path: PathLike, basis_dtype: str = "float32") -> str:
        """Write our ``.npz`` format (exactly ``path``; written atomically). Returns the
        sha256 stored in the file. Floating fields are written as float32; with
        ``basis_dtype="float16"`` the identity / expression bases are stored as float16,
        which must be lossless (use :meth:`quantized` first)."""
        path = pathlib.Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"MorphableModel.save: argument `path` must end in .npz, got "
                             f"{str(path)!r}")
        if basis_dtype not in ("float32", "float16"):
            raise ValueError(f"MorphableModel.save: argument `basis_dtype` must be 'float32' or "
                             f"'float16', got {basis_dtype!r}")
        digest = self.sha256()
        payload = dict(self.canonical_arrays())
        if basis_dtype == "float16":
            for n in _HALF_OK:
                h = payload[n].astype("<f2")
                if not np.array_equal(h.astype("<f4"), payload[n]):
                    raise ValueError(f"MorphableModel.save: `{n}` is not exactly representable "
                                     "in float16; save model.quantized() instead")
                payload[n] = h
        payload.update(
            format=np.array(FORMAT_NAME), format_version=np.array(FORMAT_VERSION, np.int64),
            name=np.array(self.name), sha256=np.array(digest),
            metadata_json=np.array(json.dumps(self.metadata, sort_keys=True, allow_nan=False)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, **payload)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return digest

    @classmethod
    def load(cls, path: PathLike, device: Union[str, torch.device, None] = None,
             expected_sha256: Optional[str] = None) -> "MorphableModel":
        """Read our ``.npz`` format; verify the stored sha256 (and ``expected_sha256``, e.g.
        the checksum recorded with trained weights). Raises ValueError on a foreign, newer or
        corrupt file, naming what is wrong."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"MorphableModel.load: no such file: {str(path)!r}")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise ValueError(f"MorphableModel.load: {str(path)!r} is not a pyface3d morphable "
                             f"model .npz (it needs pickling or is not an npz: {exc})") from exc
        except Exception as exc:
            raise ValueError(f"MorphableModel.load: cannot read {str(path)!r} as .npz: "
                             f"{exc}") from exc
        if "format" not in data or str(data["format"]) != FORMAT_NAME:
            raise ValueError(f"MorphableModel.load: {str(path)!r} is not a {FORMAT_NAME} file "
                             f"(missing or wrong 'format' key)")
        version = int(data.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError(f"MorphableModel.load: {str(path)!r} has format_version {version}; "
                             f"this pyface3d reads version {FORMAT_VERSION}"
                             + (" (written by a newer pyface3d?)" if version > FORMAT_VERSION
                                else ""))
        missing = [k for k in _META_KEYS + tuple(n for n, _ in HASH_FIELDS) if k not in data]
        if missing:
            raise ValueError(f"MorphableModel.load: {str(path)!r} lacks keys {missing}")
        unknown = sorted(set(data) - set(_META_KEYS) - set(_ARRAY_KEYS))
        if unknown:
            raise ValueError(f"MorphableModel.load: {str(path)!r} has keys this version does "
                             f"not know: {unknown}")
        for n, dt in HASH_FIELDS + _OPTIONAL_FIELDS:
            if n in _HALF_OK and n in data and data[n].dtype == np.dtype("<f2"):
                data[n] = data[n].astype("<f4")  # exact
                continue
            if n in data and data[n].dtype != np.dtype(dt):
                raise ValueError(f"MorphableModel.load: {str(path)!r}: array {n!r} has dtype "
                                 f"{data[n].dtype}, the format stores {np.dtype(dt)}")
        try:
            metadata = json.loads(str(data["metadata_json"]))
        except json.JSONDecodeError as exc:
            raise ValueError(f"MorphableModel.load: {str(path)!r}: 'metadata_json' is not "
                             f"valid JSON: {exc}") from exc
        model = cls(mean=data["mean"], id_basis=data["id_basis"], exp_basis=data["exp_basis"],
                    triangles=data["triangles"], landmarks68=data["landmarks68"],
                    param_mean=data["param_mean"], param_std=data["param_std"],
                    name=str(data["name"]), uvs=data.get("uvs"),
                    uv_triangles=data.get("uv_triangles"), metadata=metadata)
        stored = str(data["sha256"])
        actual = model.sha256()
        if stored != actual:
            raise ValueError(f"MorphableModel.load: checksum mismatch in {str(path)!r}: the file "
                             f"records sha256 {stored} but its arrays hash to {actual}; the "
                             f"file is corrupt or was edited")
        if expected_sha256 is not None and expected_sha256.lower() != actual:
            raise ValueError(f"MorphableModel.load: {str(path)!r} has sha256 {actual}, expected "
                             f"{expected_sha256} (e.g. the basis recorded with trained weights): "
                             f"this is a different morphable model")
        if device is not None:
            model = model.to(device)
        return model

    def __repr__(self) -> str:
        return (f"MorphableModel(name={self.name!r}, N={self.N}, I={self.I}, E={self.E}, "
                f"F={self.F}, dtype={self.dtype}, device={self.device})")
