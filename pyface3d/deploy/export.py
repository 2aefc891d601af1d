"""ONNX export of a network with a fused, exportable 3DMM reconstruction head.

The morphable model's compiled op (``pyface3d::morphable_reconstruct``) has no ONNX
symbolic, so the exported head is written in plain torch (slices, matmuls, adds):

    p = out * param_std + param_mean                       de-whitened (B, 12 + I + E)
    S = mean_K + A_K @ p[:, 12:]                           (B, K, 3), K = 68 landmark rows or N
    V = S @ (f R)^T + t                                    scaled orthographic, 3DDFA model frame
    crop frame: x = V_x - 1,  y = size - V_y,  z = V_z     (pyface3d.data.roi's map, y down)

Outputs (names, float32): ``params`` (B, 12 + I + E) de-whitened 3DDFA parameters, always;
``landmarks`` (B, 68, 3) and/or ``vertices`` (B, N, 3) as the head asks. See docs/deploy.md.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import pathlib
import tempfile
import warnings
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

__all__ = ["HEAD_OUTPUTS", "FRAMES", "MIN_OPSET", "MAX_OPSET", "INPUT_NAME", "UntrainedWarning",
           "ExportResult", "ReconstructionHead", "DeployModule", "parse_head", "load_network",
           "build_deploy_module", "export_onnx", "verify_onnx", "reference_outputs",
           "file_sha256", "calibrate_batchnorm"]

HEAD_OUTPUTS = ("params", "landmarks", "vertices")
FRAMES = ("crop", "model")
MIN_OPSET = 17
#: the TorchScript exporter of torch 2.14 and TensorRT 10's ONNX parser both stop at 20
MAX_OPSET = 20
INPUT_NAME = "crops"
INPUT_NORMALISATION = "BGR, (x - 127.5) / 128, 3 x size x size"


class UntrainedWarning(UserWarning):
    """A network with random weights was exported (useful for latency only)."""


def parse_head(head: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """``"params"``, ``"landmarks"``, ``"vertices"`` or a combination (``"landmarks+vertices"``,
    ``"landmarks,vertices"`` or a list) -> the output names in canonical order; ``params`` is
    always the first output."""
    if isinstance(head, str):
        parts = [p.strip() for p in head.replace(",", "+").split("+")]
    elif isinstance(head, (list, tuple)) and all(isinstance(p, str) for p in head):
        parts = [p.strip() for p in head]
    else:
        raise TypeError(f"argument `head` must be a string like 'landmarks' or "
                        f"'landmarks+vertices' or a list of names, got {head!r}")
    bad = [p for p in parts if p not in HEAD_OUTPUTS]
    if bad or not parts:
        raise ValueError(f"argument `head` must name outputs among {list(HEAD_OUTPUTS)} "
                         f"(joined with '+' or ','), got {head!r}")
    return tuple(n for n in HEAD_OUTPUTS if n == "params" or n in parts)


class ReconstructionHead(nn.Module):
    """Whitened network output (B, P) -> ``params`` [+ ``landmarks``] [+ ``vertices``].

    Plain torch ops only (exportable to ONNX opset >= 17, and to TensorRT). Computed in
    float32 whatever the network's precision: the bases of micrometre-scale models (|mean|
    ~ 1e5) overflow float16.

    Args:
        morphable: a :class:`~pyface3d.morphable.MorphableModel`.
        outputs: from :func:`parse_head`.
        frame: ``"crop"`` (default): crop pixels, x right, y down, z towards the viewer
            (larger = nearer), pixel centres at integers, as :func:`pyface3d.ops.rasterize`
            takes them; ``"model"``: 3DDFA's frame with the pose applied (y up).
        crop_size: side of the crop (120) for the ``y = size - Y`` flip.
    """

    def __init__(self, morphable, outputs: Sequence[str] = ("params", "landmarks"),
                 frame: str = "crop", crop_size: int = 120):
        super().__init__()
        outputs = parse_head(list(outputs))
        if frame not in FRAMES:
            raise ValueError(f"argument `frame` must be one of {list(FRAMES)}, got {frame!r}")
        if not isinstance(crop_size, int) or crop_size < 1:
            raise ValueError(f"argument `crop_size` must be a positive int, got {crop_size!r}")
        mm = morphable.to("cpu", torch.float32)
        self.outputs = outputs
        self.frame = frame
        self.crop_size = crop_size
        self.num_params = mm.num_params
        self.register_buffer("param_mean", mm.param_mean.clone())
        self.register_buffer("param_std", mm.param_std.clone())
        basis = torch.cat((mm.id_basis, mm.exp_basis), 1)  # (3N, I + E)
        if "landmarks" in outputs:
            ids = mm.landmarks68.long()
            rows = (ids[:, None] * 3 + torch.arange(3)).reshape(-1)
            self.register_buffer("lm_mean", mm.mean[rows].reshape(1, 68 * 3).clone())
            self.register_buffer("lm_basis_t", basis[rows].t().contiguous())  # (I+E, 204)
        if "vertices" in outputs:
            self.register_buffer("v_mean", mm.mean.reshape(1, -1).clone())
            self.register_buffer("v_basis_t", basis.t().contiguous())  # (I+E, 3N)
        # crop frame: [x, y, z] -> [x - 1, size - y, z]
        self.register_buffer("frame_scale", torch.tensor([1.0, -1.0, 1.0]))
        self.register_buffer("frame_offset", torch.tensor([-1.0, float(crop_size), 0.0]))

    def _posed(self, pose: torch.Tensor, coeff: torch.Tensor, mean: torch.Tensor,
               basis_t: torch.Tensor) -> torch.Tensor:
        k = mean.shape[1] // 3
        shape = (torch.matmul(coeff, basis_t) + mean).reshape(-1, k, 3)
        rot = pose[:, :, :3]                      # (B, 3, 3) = f R
        trans = pose[:, :, 3:].transpose(1, 2)   # (B, 1, 3)
        v = torch.matmul(shape, rot.transpose(1, 2)) + trans
        if self.frame == "crop":
            v = v * self.frame_scale + self.frame_offset
        return v

    def forward(self, out: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        p = out.to(self.param_mean.dtype) * self.param_std + self.param_mean
        res = [p]
        if len(self.outputs) > 1:
            pose = p[:, :12].reshape(-1, 3, 4)
            coeff = p[:, 12:]
            if "landmarks" in self.outputs:
                res.append(self._posed(pose, coeff, self.lm_mean, self.lm_basis_t))
            if "vertices" in self.outputs:
                res.append(self._posed(pose, coeff, self.v_mean, self.v_basis_t))
        return tuple(res)

    def extra_repr(self) -> str:
        return f"outputs={self.outputs}, frame={self.frame!r}, crop_size={self.crop_size}"


class DeployModule(nn.Module):
    """Network + :class:`ReconstructionHead`. ``fp16``: the network runs in float16 (the
    input is cast inside; I/O and the head stay float32)."""

    def __init__(self, net: nn.Module, head: ReconstructionHead, fp16: bool = False):
        super().__init__()
        self.net = net.half() if fp16 else net.float()
        self.head = head
        self.fp16 = bool(fp16)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.net(x.half() if self.fp16 else x)
        return self.head(out)


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_onnx` wrote."""
    path: str
    sha256: str
    model_name: str
    outputs: Dict[str, List[Union[int, str]]]
    opset: int
    fp16: bool
    trained: bool
    frame: str
    input_size: int
    op_counts: Dict[str, int]
    nodes_before_simplify: int
    verify: Optional[Dict[str, Dict[str, float]]] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def file_sha256(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def load_network(model_or_weights, morphable="ict", seed: int = 0,
                 warn_untrained: bool = True) -> Tuple[nn.Module, object, bool, str]:
    """Resolve the ``model_or_weights`` argument of :func:`export_onnx`.

    Args:
        model_or_weights: an ``nn.Module`` (used as is, in eval mode), a path to ``model.pt``
            written by ``pyface3d train`` (loaded with
            :func:`pyface3d.train.trainer.load_trained`, which checks the morphable model's
            sha256), or a registry name (:func:`pyface3d.models.list_models`): random weights
            from ``seed``, with an :class:`UntrainedWarning`.
        morphable: ``"ict"``, a ``.npz`` path or a ``MorphableModel``.

    Returns:
        (network in eval mode, MorphableModel, trained?, model name)
    """
    from .. import models
    from ..morphable import resolve

    try:
        mm = resolve(morphable)
    except (OSError, ValueError, KeyError) as e:
        raise type(e)(f"argument `morphable`: {e}") from e
    if isinstance(model_or_weights, nn.Module):
        net = model_or_weights
        name = getattr(net, "model_name", type(net).__name__)
        return net.eval(), mm, True, name
    if not isinstance(model_or_weights, (str, os.PathLike)):
        raise TypeError(f"argument `model_or_weights` must be an nn.Module, a model.pt path or "
                        f"a registry name, got {type(model_or_weights).__name__}")
    spec = os.fspath(model_or_weights)
    if os.path.isfile(spec):
        from ..train.trainer import load_trained

        try:
            net = load_trained(spec, mm)
        except ValueError as e:
            raise ValueError(f"argument `model_or_weights` (--weights): {e}") from e
        except (KeyError, RuntimeError, EOFError) as e:
            raise ValueError(f"argument `model_or_weights` (--weights): {spec} is not a "
                             f"model.pt written by `pyface3d train` ({type(e).__name__}: "
                             f"{e})") from e
        return net.eval(), mm, True, getattr(net, "model_name", "network")
    if spec in models.list_models():
        net = models.create(spec, num_params=mm.num_params, seed=seed).eval()
        if warn_untrained:
            warnings.warn(f"model {spec!r} has randomly initialised weights (seed {seed}): "
                          "the exported network is UNTRAINED and useful for latency "
                          "measurements only", UntrainedWarning, stacklevel=3)
        return net, mm, False, spec
    raise ValueError(f"argument `model_or_weights`: {spec!r} is neither an existing file "
                     f"(model.pt) nor a registry model ({', '.join(models.list_models())})")


def build_deploy_module(net: nn.Module, morphable, head="params", frame: str = "crop",
                        input_size: int = 120, fp16: bool = False) -> DeployModule:
    """The module that :func:`export_onnx` exports (eval mode, CPU)."""
    outputs = parse_head(head)
    rh = ReconstructionHead(morphable, outputs, frame=frame, crop_size=input_size)
    net = copy.deepcopy(net).cpu().eval()  # the caller's network keeps its device / dtype
    return DeployModule(net, rh, fp16=fp16).eval()


@torch.no_grad()
def calibrate_batchnorm(net: nn.Module, batches: int = 4, batch_size: int = 8,
                        size: int = 120, seed: int = 0) -> nn.Module:
    """Set the BatchNorm running statistics of an untrained network from random crops
    (cumulative average over ``batches``), so that its activations and outputs have
    realistic magnitudes. A freshly initialised network has unit running variances, its
    activations shrink layer by layer and its outputs are ~1e-9: useless for comparing an
    exported graph with torch. Weights are untouched. Returns ``net`` in eval mode."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum,) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(batches):
        net(torch.randn(batch_size, 3, size, size, generator=g))
    for m, (mom,) in zip(bns, saved):
        m.momentum = mom
    return net.eval()


def _check_export_args(opset, input_size, fp16, frame):
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"argument `opset` (--opset) must be an int in [{MIN_OPSET}, "
                         f"{MAX_OPSET}] (TensorRT 10 parses opsets up to 20), got {opset!r}")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"argument `input_size` must be an int >= 32 (the networks' minimum), "
                         f"got {input_size!r}")
    if not isinstance(fp16, bool):
        raise TypeError(f"argument `fp16` (--fp16) must be a bool, got {fp16!r}")
    if frame not in FRAMES:
        raise ValueError(f"argument `frame` must be one of {list(FRAMES)}, got {frame!r}")


def export_onnx(model_or_weights, path, opset: int = 17, head="params", fp16: bool = False,
                morphable="ict", frame: str = "crop", input_size: int = 120,
                dynamic_batch: bool = True, simplify: bool = True, verify: bool = False,
                seed: int = 0, verify_batches: Sequence[int] = (1, 3)) -> ExportResult:
    """Export a network plus reconstruction head to ONNX (TorchScript-based exporter).

    Args:
        model_or_weights: ``nn.Module``, ``model.pt`` from ``pyface3d train``, or a registry
            name (random weights from ``seed``: warns :class:`UntrainedWarning`).
        path: output ``.onnx`` (written atomically; parent folders are created).
        opset: ONNX opset, 17..20.
        head: ``"params"``, ``"landmarks"``, ``"vertices"`` or a combination
            (``"landmarks+vertices"``); the de-whitened ``params`` are always output.
        fp16: network weights and activations in float16 (I/O and head float32).
        morphable: the morphable model of the weights (``"ict"``, ``.npz``, or a model).
        frame: ``"crop"`` (crop pixels, y down; default) or ``"model"`` (3DDFA, y up).
        input_size: crop side (the graph's H = W; 120).
        dynamic_batch: batch dimension ``batch`` dynamic (else fixed at 1).
        simplify: clean the graph (:func:`pyface3d.deploy.graph.simplify`).
        verify: run the file with ONNX Runtime (CPU) on random crops at the batch sizes
            ``verify_batches`` and compare with torch eager (the network plus the compiled
            ``pyface3d::morphable_reconstruct`` op); raises ``AssertionError`` beyond
            tolerance. The max abs / relative differences go to ``result.verify``.

    Returns:
        :class:`ExportResult`.
    """
    import onnx

    from . import graph

    _check_export_args(opset, input_size, fp16, frame)
    outputs = parse_head(head)
    if not isinstance(dynamic_batch, bool):
        raise TypeError(f"argument `dynamic_batch` must be a bool, got {dynamic_batch!r}")
    path = pathlib.Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"argument `path` (--out) must end in .onnx, got {str(path)!r}")
    net, mm, trained, name = load_network(model_or_weights, morphable, seed=seed)
    module = build_deploy_module(net, mm, outputs, frame=frame, input_size=input_size,
                                 fp16=fp16)
    x = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad():
        width = module.net(x.half() if fp16 else x).shape[-1]
    if width != mm.num_params:
        raise ValueError(f"argument `model_or_weights`: the network outputs {width} parameters "
                         f"but the morphable model ({mm.name}) has {mm.num_params} (12 + "
                         f"{mm.I} + {mm.E}); pass the morphable model the network belongs to")
    path.parent.mkdir(parents=True, exist_ok=True)
    dyn = None
    if dynamic_batch:
        dyn = {INPUT_NAME: {0: "batch"}}
        dyn.update({n: {0: "batch"} for n in outputs})
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # the networks' input checks are constant under tracing (static C, H, W)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX.*")
            warnings.filterwarnings("ignore", message="The feature will be removed",
                                    category=DeprecationWarning)
            with torch.no_grad():
                torch.onnx.export(module, (x,), tmp, dynamo=False, opset_version=opset,
                                  input_names=[INPUT_NAME], output_names=list(outputs),
                                  dynamic_axes=dyn, do_constant_folding=True,
                                  training=torch.onnx.TrainingMode.EVAL)
        model = onnx.load(tmp)
        before = len(model.graph.node)
        if simplify:
            model = graph.simplify(model)
        meta = {
            "pyface3d.model_name": name, "pyface3d.trained": str(trained).lower(),
            "pyface3d.head": "+".join(outputs), "pyface3d.frame": frame,
            "pyface3d.input_size": str(input_size), "pyface3d.fp16": str(fp16).lower(),
            "pyface3d.input": INPUT_NORMALISATION,
            "pyface3d.morphable_sha256": mm.sha256(),
            "pyface3d.num_params": str(mm.num_params),
        }
        del model.metadata_props[:]
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        model.producer_name = "pyface3d.deploy"
        onnx.checker.check_model(model)
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    shapes = {}
    for o in model.graph.output:
        shapes[o.name] = [d.dim_param if d.dim_param else d.dim_value
                          for d in o.type.tensor_type.shape.dim]
    res = ExportResult(path=str(path), sha256=file_sha256(path), model_name=name,
                       outputs=shapes, opset=opset, fp16=fp16, trained=trained, frame=frame,
                       input_size=input_size, op_counts=graph.op_counts(model),
                       nodes_before_simplify=before)
    if verify:
        batches = tuple(verify_batches) if dynamic_batch else (1,)
        res.verify = verify_onnx(path, module, batches=batches, seed=seed, morphable=mm)
    return res


@torch.no_grad()
def reference_outputs(module: DeployModule, x: torch.Tensor,
                      morphable=None) -> Dict[str, np.ndarray]:
    """Torch eager outputs of ``module`` for ``x`` (numpy, the module's float dtype). With
    ``morphable``, landmarks / vertices come from the compiled op
    (``MorphableModel.reconstruct``) instead of the plain-torch head: the independent
    reference that :func:`verify_onnx` compares against."""
    outs = module(x)
    res = dict(zip(module.head.outputs, (o.numpy() for o in outs)))
    if morphable is not None and len(module.head.outputs) > 1:
        p = torch.from_numpy(res["params"]).to(morphable.dtype)
        for n in module.head.outputs[1:]:
            v = morphable.reconstruct(p, landmarks_only=(n == "landmarks"))
            if module.head.frame == "crop":
                v = torch.stack((v[..., 0] - 1, module.head.crop_size - v[..., 1], v[..., 2]), -1)
            res[n] = v.numpy()
    return res


def _float64_copy(module: DeployModule) -> DeployModule:
    m = copy.deepcopy(module)
    m.net.double()
    m.head.double()
    m.fp16 = False
    return m.eval()


def verify_onnx(path, module: DeployModule, batches: Sequence[int] = (1, 3), seed: int = 0,
                morphable=None, atol: Optional[float] = None,
                rtol: Optional[float] = None) -> Dict[str, Dict[str, float]]:
    """Run ``path`` with ONNX Runtime (CPU) and compare with ``module`` in torch eager.

    Inputs: random crops ``N(0, 1)`` (the normalised range), one batch per entry of
    ``batches``. References: torch in the module's precision (float32, or the float16
    network) and torch in float64. For ``landmarks`` / ``vertices`` they are computed with
    the compiled ``pyface3d::morphable_reconstruct`` op when ``morphable`` (the
    MorphableModel of the head) is given, else with the module's own plain-torch head.

    Tolerance, per output: ``max|onnx - torch| <= atol + rtol * max|torch| + 4 * noise``
    where ``noise = max|torch - torch float64|`` is torch's own rounding error on this input
    (an ill-conditioned network, e.g. untrained with BN statistics from noise, legitimately
    differs more between kernels). Defaults (atol, rtol): (1e-4, 1e-4) in float32, (1e-2,
    1e-2) with fp16.

    Returns ``{output: {"max_abs_diff", "max_rel_diff", "max_abs_ref", "torch_fp64_diff",
    "batch"}}`` (the worst batch per output). Raises AssertionError naming the output beyond
    tolerance.
    """
    from .ort import OrtRunner

    fp16 = module.fp16
    atol = (1e-2 if fp16 else 1e-4) if atol is None else atol
    rtol = (1e-2 if fp16 else 1e-4) if rtol is None else rtol
    runner = OrtRunner(path, providers=["CPUExecutionProvider"], threads=1)
    m64 = _float64_copy(module)
    mm64 = morphable.to(dtype=torch.float64) if morphable is not None else None
    g = torch.Generator().manual_seed(seed)
    size = module.head.crop_size
    report: Dict[str, Dict[str, float]] = {}
    for b in batches:
        x = torch.randn(b, 3, size, size, generator=g)
        ref = reference_outputs(module, x, morphable)
        ref64 = reference_outputs(m64, x.double(), mm64)
        got = runner.run(x.numpy())
        for n, r in ref.items():
            r = r.astype(np.float64)
            d = float(np.abs(got[n].astype(np.float64) - r).max())
            noise = float(np.abs(r - ref64[n]).max())
            scale = float(np.abs(r).max())
            entry = {"max_abs_diff": d, "max_rel_diff": d / max(scale, 1e-12),
                     "max_abs_ref": scale, "torch_fp64_diff": noise, "batch": b}
            if n not in report or d > report[n]["max_abs_diff"]:
                report[n] = entry
            tol = atol + rtol * scale + 4 * noise
            if not d <= tol:
                raise AssertionError(f"ONNX Runtime output {n!r} differs from torch by {d:.3g} "
                                     f"(max |torch| {scale:.3g}, torch vs float64 {noise:.3g}; "
                                     f"tolerance {tol:.3g}) at batch {b}: {path}")
    return report


def describe(result: ExportResult) -> str:
    """Human-readable summary of an export."""
    lines = [f"wrote {result.path} (sha256 {result.sha256[:16]}..., opset {result.opset}, "
             f"{'fp16' if result.fp16 else 'fp32'}, model {result.model_name}"
             f"{'' if result.trained else ', UNTRAINED'})"]
    for n, s in result.outputs.items():
        lines.append(f"  output {n}: {s}")
    ops = ", ".join(f"{k} {v}" for k, v in sorted(result.op_counts.items()))
    lines.append(f"  {sum(result.op_counts.values())} nodes (from "
                 f"{result.nodes_before_simplify} before simplify): {ops}")
    if result.verify:
        for n, r in result.verify.items():
            lines.append(f"  verify {n}: max abs diff {r['max_abs_diff']:.3g} vs torch (max |ref| "
                         f"{r['max_abs_ref']:.3g}; torch vs float64 {r['torch_fp64_diff']:.3g}; "
                         f"batch {r['batch']})")
    return "\n".join(lines)


def metadata(path) -> Dict[str, str]:
    """The ``pyface3d.*`` metadata of an exported file."""
    import onnx

    m = onnx.load(os.fspath(path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}

