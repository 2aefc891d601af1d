"""Evaluation of a 3DMM-regression network on AFLW (aflw-dev protocol) and AFLW2000-3D.

Pipeline for every 120x120 crop (batched, ``torch.no_grad``, tqdm progress bar):

1. the network predicts whitened parameters ``out`` (B, P);
2. ``param = out * param_std + param_mean`` (float64);
3. the 68 landmarks are reconstructed in the model/crop frame (y up) — with the morphable
   model the weights were trained with (``MorphableModel.reconstruct(landmarks_only=True)``)
   or, for the 3DDFA_V2 teacher, with its 68-keypoint bases (``KeypointBases``);
4. they are mapped to the original image with the crop's ROI
   (:func:`pyface3d.data.roi.crop_to_image`, 3DDFA_V2's map);
5. scored: AFLW with :func:`pyface3d.metrics.aflw_dev_nme` (21 point groups, visible points,
   ``sqrt(w*h)`` of the visible ``pts21`` box), AFLW2000-3D with
   :func:`pyface3d.metrics.aflw2000_nme` (68 points, ``sqrt(w*h)`` of the ground-truth
   landmark box); bucketed by |yaw| (<= 30, 30-60, > 60) with
   :func:`pyface3d.metrics.bucket_by_yaw` (mean of the bucket means, their std).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .. import metrics

__all__ = ["LandmarkPredictor", "EvalResult", "load_weights", "load_teacher", "load_predictor",
           "predict_landmarks", "evaluate_aflw", "evaluate_aflw2000", "TEACHER_FILES"]

#: files the 3DDFA_V2 mb05 teacher folder must hold
TEACHER_FILES = ("mb05_120x120.pth", "param_mean_v2.txt", "param_std_v2.txt", "u_base.txt",
                 "w_shp_base.txt", "w_exp_base.txt")


@dataclass
class LandmarkPredictor:
    """A network plus what turns its output into 68 landmarks.

    Attributes:
        net: module mapping (B, 3, 120, 120) float32 crops (BGR, ``(x - 127.5) / 128``) to
            (B, P) whitened parameters; used in eval mode.
        param_mean, param_std: (P,) whitening statistics (``param = out * std + mean``).
        reconstruct: callable (B, P) float64 CPU tensor of de-whitened parameters ->
            (B, 68, 3) landmarks in the model/crop frame (y up).
        name: method name for tables and plots.
    """
    net: torch.nn.Module
    param_mean: torch.Tensor
    param_std: torch.Tensor
    reconstruct: Callable[[torch.Tensor], torch.Tensor]
    name: str = "model"

    def __post_init__(self):
        self.param_mean = torch.as_tensor(self.param_mean, dtype=torch.float64).reshape(-1)
        self.param_std = torch.as_tensor(self.param_std, dtype=torch.float64).reshape(-1)
        if self.param_mean.shape != self.param_std.shape:
            raise ValueError(f"LandmarkPredictor: `param_mean` {tuple(self.param_mean.shape)} and "
                             f"`param_std` {tuple(self.param_std.shape)} differ in shape")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) crops (on the network's device) -> (B, 68, 3) float64 CPU landmarks in
        the model/crop frame."""
        out = self.net(images)
        if out.dim() != 2 or out.shape[1] != self.param_mean.numel():
            raise ValueError(f"the network outputs shape {tuple(out.shape)} but the whitening "
                             f"statistics have {self.param_mean.numel()} parameters (weights and "
                             "morphable model / teacher do not belong together)")
        params = out.detach().to("cpu", torch.float64) * self.param_std + self.param_mean
        lm = torch.as_tensor(self.reconstruct(params)).to("cpu", torch.float64)
        if lm.shape != (out.shape[0], 68, 3):
            raise ValueError(f"`reconstruct` returned shape {tuple(lm.shape)}, expected "
                             f"({out.shape[0]}, 68, 3)")
        return lm


def _device(device) -> torch.device:
    d = torch.device(device)
    if d.type not in ("cpu", "cuda"):
        raise ValueError(f"argument `device` (--device) must be 'cpu' or 'cuda', got {device!r}")
    if d.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("argument `device` (--device) is 'cuda' but no CUDA device is "
                           "available here: use --device cpu")
    return d


def load_weights(weights, morphable="ict", device="cpu") -> LandmarkPredictor:
    """Predictor from ``model.pt`` written by ``pyface3d train`` and the morphable model it was
    trained with (``"ict"`` or a path to our ``.npz``; checked by sha256 in
    :func:`pyface3d.train.trainer.load_trained`)."""
    from ..morphable import resolve
    from ..train.trainer import load_trained

    weights = os.fspath(weights)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"argument `weights` (--weights): {weights} is not a file; pass "
                                "the model.pt written by `pyface3d train`")
    dev = _device(device)
    try:
        mm = resolve(morphable)
    except (OSError, ValueError, KeyError) as e:
        raise type(e)(f"argument `morphable` (--morphable): {e}") from e
    try:
        net = load_trained(weights, mm)
    except ValueError as e:
        if "morphable" in str(e):
            raise ValueError(f"argument `morphable` (--morphable): {e}") from e
        raise ValueError(f"argument `weights` (--weights): {e}") from e
    except (KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"argument `weights` (--weights): {weights} is not a model.pt written "
                         f"by `pyface3d train` ({type(e).__name__}: {e})") from e
    net = net.to(dev).eval()
    mm64 = mm.to("cpu")

    def reconstruct(params: torch.Tensor) -> torch.Tensor:
        return mm64.reconstruct(params.to(mm64.dtype), landmarks_only=True)

    return LandmarkPredictor(net, mm.param_mean.detach().cpu(), mm.param_std.detach().cpu(),
                             reconstruct, name=os.path.splitext(os.path.basename(weights))[0])


def load_teacher(folder, device="cpu") -> LandmarkPredictor:
    """The 3DDFA_V2 mb05 teacher from ``folder`` (e.g.
    ``$PYFACE3D_SHARED/assets/teachers/3ddfa_v2_mb05``): ``mb05_120x120.pth`` loaded with
    ``weights_only=True`` into ``models.create("mobilenet_v1_x0.5")`` (without the file's
    unused ``fc_lm`` head), its whitening
    ``param_mean_v2.txt`` / ``param_std_v2.txt`` and 68-keypoint bases."""
    from .. import models
    from ..data import load_3ddfa_keypoint_bases

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"argument `teacher` (--teacher): {folder} is not a folder; pass "
                                "the 3DDFA_V2 mb05 teacher folder (e.g. "
                                "$PYFACE3D_SHARED/assets/teachers/3ddfa_v2_mb05)")
    missing = [f for f in TEACHER_FILES if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(f"argument `teacher` (--teacher): {folder} lacks {missing}; it "
                                f"must hold {list(TEACHER_FILES)}")
    mean = np.loadtxt(os.path.join(folder, "param_mean_v2.txt"), dtype=np.float64)
    std = np.loadtxt(os.path.join(folder, "param_std_v2.txt"), dtype=np.float64)
    if mean.shape != (62,) or std.shape != (62,):
        raise ValueError(f"argument `teacher` (--teacher): param_mean_v2.txt / param_std_v2.txt "
                         f"must hold 62 values, got {mean.shape} / {std.shape}")
    kb = load_3ddfa_keypoint_bases(folder)
    net = models.create("mobilenet_v1_x0.5", num_params=62)
    ck = torch.load(os.path.join(folder, "mb05_120x120.pth"), map_location="cpu",
                    weights_only=True)
    sd = ck.get("state_dict", ck) if isinstance(ck, dict) else ck
    # 3DDFA_V2's mb05 file also holds an unused 136-output landmark head (``fc_lm``) that
    # its inference code ignores; only that head is dropped, anything else must match
    sd = {k: v for k, v in sd.items() if not k.split("module.", 1)[-1].startswith("fc_lm.")}
    models.load_3ddfa_state_dict(net, sd)
    net = net.to(_device(device)).eval()

    def reconstruct(params: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(kb.reconstruct(params.numpy()))

    return LandmarkPredictor(net, torch.from_numpy(mean), torch.from_numpy(std), reconstruct,
                             name="3DDFA_V2 mb05 (teacher)")


def load_predictor(weights=None, morphable="ict", teacher=None,
                   device="cpu") -> LandmarkPredictor:
    """Exactly one of ``weights`` (with ``morphable``) and ``teacher``."""
    if (weights is None) == (teacher is None):
        raise ValueError("pass exactly one of `weights` (--weights model.pt) and `teacher` "
                         "(--teacher DIR)")
    if teacher is not None:
        return load_teacher(teacher, device)
    return load_weights(weights, morphable, device)


def _frozen(net: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """``net`` traced and frozen for inference (BatchNorm folded into the convolutions,
    oneDNN kernels on CPU): about 2x faster for MobileNet-style networks on CPU. The result is
    checked against ``net`` on ``example``; on any failure ``net`` itself is returned."""
    import warnings

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net.eval(), example, check_trace=False)
            fast = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            a, b = net(example), fast(example)
            half = example[: max(1, example.shape[0] // 2)]
            c, d = net(half), fast(half)
        tol = 1e-3 * (1 + float(a.abs().max()))
        if (a.shape == b.shape and c.shape == d.shape and float((a - b).abs().max()) < tol
                and float((c - d).abs().max()) < tol):
            return fast
    except Exception:  # noqa: BLE001 - any tracing problem: run the module as it is
        pass
    return net


def predict_landmarks(predictor: LandmarkPredictor, dataset, batch_size: int = 128,
                      device="cpu", progress: bool = True, num_workers: int = 0,
                      keys: Sequence[str] = (), desc: str = "eval",
                      optimize: bool = True) -> Dict[str, object]:
    """Run ``predictor`` over every item of ``dataset`` (dicts with ``image`` (3, 120, 120) and
    ``roi`` (4,)). With ``optimize`` (default) the network is traced and frozen for inference
    on the first batch (:func:`_frozen`; outputs agree with the module to float32 rounding,
    the module is used as is if tracing fails).

    Returns a dict: ``pred68`` (N, 68, 2) float64 image coordinates (0-based pixels),
    ``roi`` (N, 4), ``optimized`` (whether the frozen network was used) and, for each name in
    ``keys``, the items' values (tensors stacked into
    float64 numpy arrays, anything else as a list).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"argument `batch_size` (--batch-size) must be a positive integer, got "
                         f"{batch_size!r}")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to evaluate")
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from ..data.roi import crop_to_image

    dev = _device(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    preds: List[np.ndarray] = []
    rois: List[np.ndarray] = []
    got: Dict[str, list] = {k: [] for k in keys}
    run = predictor
    with torch.no_grad(), tqdm(total=len(dataset), desc=desc, unit="img",
                               disable=not progress) as bar:
        for batch in loader:
            images = batch["image"].to(dev, non_blocking=True)
            if optimize and run is predictor:
                run = dataclasses.replace(predictor, net=_frozen(predictor.net.eval(),
                                                                 images))
            lm = run(images)
            roi = batch["roi"].to(torch.float64)
            preds.append(crop_to_image(lm.numpy(), roi.numpy())[..., :2])
            rois.append(roi.numpy())
            for k in keys:
                v = batch[k]
                got[k].append(v.to(torch.float64).numpy() if isinstance(v, torch.Tensor)
                              else list(v))
            bar.update(len(roi))
    out: Dict[str, object] = {"pred68": np.concatenate(preds), "roi": np.concatenate(rois),
                              "optimized": run.net is not predictor.net}
    for k, parts in got.items():
        out[k] = (np.concatenate(parts) if parts and isinstance(parts[0], np.ndarray)
                  else [x for p in parts for x in p])
    return out


@dataclass
class EvalResult:
    """Result of one benchmark run.

    Attributes:
        dataset: ``"aflw"`` or ``"aflw2000"``; title: the column-group title.
        method: method name (table row).
        names: (N,) image names; yaw: (N,) degrees; errors: (N,) NME (fractions).
        buckets: :func:`pyface3d.metrics.bucket_by_yaw` of ``errors`` (means per |yaw| bucket,
            counts, mean of the bucket means, std).
        seconds: wall time of prediction + scoring (data loading included).
        info: run settings (root, weights / teacher, device, batch size, ...).
    """
    dataset: str
    title: str
    method: str
    names: List[str]
    yaw: np.ndarray
    errors: np.ndarray
    buckets: Dict[str, object]
    seconds: float
    info: Dict[str, object] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean of the three bucket means (the table's "Mean")."""
        return float(self.buckets["mean"])

    def summary(self) -> Dict[str, object]:
        """JSON-ready summary (NME in %), without per-image errors."""
        b = self.buckets
        return {"dataset": self.dataset, "title": self.title, "method": self.method,
                "num_images": len(self.names),
                "labels": list(b["labels"]), "counts": list(b["counts"]),
                "nme_buckets_percent": [100 * float(v) for v in b["buckets"]],
                "nme_mean_percent": 100 * float(b["mean"]),
                "nme_std_percent": 100 * float(b["std"]),
                "nme_overall_percent": 100 * float(b["overall"]),
                "auc_7": metrics.auc(self.errors, 0.07) if len(self.errors) else math.nan,
                "failure_rate_7": metrics.failure_rate(self.errors, 0.07),
                "seconds": self.seconds,
                "images_per_s": len(self.names) / self.seconds if self.seconds > 0 else None,
                "info": dict(self.info)}

    def to_dict(self, per_image: bool = True) -> Dict[str, object]:
        """:meth:`summary` plus, with ``per_image``, ``per_image``: a list of
        ``{"name", "yaw", "nme"}`` (``nme`` a fraction, not %)."""
        d = self.summary()
        if per_image:
            d["per_image"] = [{"name": n, "yaw": float(y), "nme": float(e)}
                              for n, y, e in zip(self.names, self.yaw, self.errors)]
        return d

    def table(self, style: str = "markdown") -> str:
        """Thesis table 6.1 layout: buckets [0, 30], [30, 60], [60, 90], Mean, Std (NME %)."""
        return metrics.format_yaw_table({self.method: self.buckets}, datasets=[self.title],
                                        style=style)

    def markdown(self) -> str:
        s = self.summary()
        counts = ", ".join(f"{lab}: {c}" for lab, c in zip(s["labels"], s["counts"]))
        return (f"# {self.title}: NME (%)\n\n{self.table('markdown')}\n\n"
                f"- images: {s['num_images']} ({counts})\n"
                f"- overall mean over images: {s['nme_overall_percent']:.3f}\n"
                f"- AUC@7%: {s['auc_7']:.4f}, failure rate (NME >= 7%): "
                f"{s['failure_rate_7']:.4f}\n"
                f"- time: {self.seconds:.1f} s ({s['images_per_s']:.0f} images/s), "
                f"device {self.info.get('device')}, batch size {self.info.get('batch_size')}\n")

    def write(self, out) -> Dict[str, str]:
        """Write ``<dataset>_nme.md``, ``<dataset>_nme.json`` (summary + per-image errors) and
        ``<dataset>_ced.png`` into folder ``out`` (created). Returns the paths."""
        out = os.fspath(out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise NotADirectoryError(f"argument `out` (--out): {out} exists and is not a folder")
        os.makedirs(out, exist_ok=True)
        paths = {"markdown": os.path.join(out, f"{self.dataset}_nme.md"),
                 "json": os.path.join(out, f"{self.dataset}_nme.json"),
                 "ced": os.path.join(out, f"{self.dataset}_ced.png")}
        with open(paths["markdown"], "w", encoding="utf-8") as f:
            f.write(self.markdown())
        with open(paths["json"], "w", encoding="utf-8") as f:
            json.dump(self.to_dict(per_image=True), f, indent=1)
        metrics.plot_ced({self.method: self.errors}, paths["ced"], max_error=0.1,
                         title=f"CED, {self.title}", thresholds=(0.07,))
        return paths


Predictorish = Optional[LandmarkPredictor]


def _predictor(predictor, weights, morphable, teacher, device) -> LandmarkPredictor:
    if predictor is not None:
        if weights is not None or teacher is not None:
            raise ValueError("pass either `predictor` or `weights` / `teacher`, not both")
        return predictor
    return load_predictor(weights, morphable, teacher, device)


def _settings(root, weights, morphable, teacher, device, batch_size,
              optimize) -> Dict[str, object]:
    return {"root": os.fspath(root), "weights": None if weights is None else os.fspath(weights),
            "morphable": None if weights is None else str(morphable),
            "teacher": None if teacher is None else os.fspath(teacher),
            "device": str(device), "batch_size": batch_size, "optimize": bool(optimize),
            "torch_threads": torch.get_num_threads()}


def evaluate_aflw(root, weights=None, morphable="ict", teacher=None, *,
                  predictor: Predictorish = None, out=None, batch_size: int = 128,
                  device="cpu", progress: bool = True, num_workers: int = 0,
                  optimize: bool = True) -> EvalResult:
    """AFLW on the aflw-dev protocol (../shared/README.md "How aflw-dev is scored").

    Args:
        root: aflw-dev layout folder: ``images/`` (120x120 crops) and ``labels.npz``
            (``names``, ``pts21`` (N, 2, 21), ``yaw``, ``roi_box`` (N, 4)).
        weights, morphable: ``model.pt`` from ``pyface3d train`` and its morphable model
            (``"ict"`` or a ``.npz`` path); or
        teacher: the 3DDFA_V2 mb05 teacher folder; or
        predictor: a ready :class:`LandmarkPredictor` (tests, custom networks).
        out: optional folder for ``aflw_nme.md``, ``aflw_nme.json``, ``aflw_ced.png``.
        batch_size, device ("cpu" | "cuda"), progress (tqdm bar), num_workers (DataLoader).
        optimize: trace + freeze the network for inference (see :func:`predict_landmarks`).

    Returns:
        :class:`EvalResult`; ``errors`` per crop: mean distance over the visible AFLW points
        (each the mean of its 68-point group) / ``sqrt(w*h)`` of the visible ``pts21`` box.
    """
    from ..data import AFLWDataset

    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"argument `root` (--root): {root} is not a folder; pass the "
                                "aflw-dev folder (images/ and labels.npz)")
    for what in ("images", "labels.npz"):
        p = os.path.join(root, what)
        if not (os.path.isdir(p) if what == "images" else os.path.isfile(p)):
            raise FileNotFoundError(f"argument `root` (--root): {p} not found; an AFLW folder "
                                    "holds images/ (120x120 crops) and labels.npz")
    pred = _predictor(predictor, weights, morphable, teacher, device)
    ds = AFLWDataset(root)
    t0 = time.perf_counter()
    r = predict_landmarks(pred, ds, batch_size, device, progress, num_workers,
                          keys=("pts21", "visible", "yaw", "name"), desc="AFLW",
                          optimize=optimize)
    pts21 = np.where(r["visible"][..., None] > 0, r["pts21"], -1.0)
    errors = metrics.aflw_dev_nme(r["pred68"], pts21)
    yaw = np.asarray(r["yaw"], np.float64)
    buckets = metrics.bucket_by_yaw(errors, yaw)
    seconds = time.perf_counter() - t0
    res = EvalResult("aflw", "AFLW (21 pts)", pred.name, list(r["name"]), yaw, errors, buckets,
                     seconds, _settings(root, weights, morphable, teacher, device, batch_size,
                               optimize))
    res.info["optimized"] = r["optimized"]
    if out is not None:
        res.info["files"] = res.write(out)
    return res


def evaluate_aflw2000(root, weights=None, morphable="ict", teacher=None, *,
                      predictor: Predictorish = None, out=None, batch_size: int = 128,
                      device="cpu", progress: bool = True, num_workers: int = 0,
                  optimize: bool = True) -> EvalResult:
    """AFLW2000-3D with 3DDFA's benchmark protocol (DESIGN.md).

    Args:
        root: folder with the 2,000 ``*.jpg`` and their ``.mat`` (``pt3d_68``, ``Pose_Para``);
            crops are made by :class:`pyface3d.data.AFLW2000Dataset` (ROI from the landmarks
            with ``benchmarkCrop.m``'s rounding, 3DDFA_V2 crop).
        weights, morphable, teacher, predictor, out, batch_size, device, progress,
        num_workers, optimize: as :func:`evaluate_aflw` (files ``aflw2000_nme.md`` / ``.json`` /
        ``aflw2000_ced.png``).

    Returns:
        :class:`EvalResult`; ``errors``: mean 2D error over the 68 points / ``sqrt(w*h)`` of
        the ground-truth landmark box; buckets by ``|Pose_Para yaw|``.
    """
    from ..data import AFLW2000Dataset

    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"argument `root` (--root): {root} is not a folder; pass the "
                                "AFLW2000-3D folder (image*.jpg with .mat files)")
    pred = _predictor(predictor, weights, morphable, teacher, device)
    try:
        ds = AFLW2000Dataset(root)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"argument `root` (--root): {e}; an AFLW2000-3D folder holds "
                                "image*.jpg files, each with a .mat of the same name") from e
    t0 = time.perf_counter()
    r = predict_landmarks(pred, ds, batch_size, device, progress, num_workers,
                          keys=("landmarks_image", "yaw", "name"), desc="AFLW2000-3D",
                          optimize=optimize)
    errors = metrics.aflw2000_nme(r["pred68"], r["landmarks_image"][..., :2])
    yaw = np.asarray(r["yaw"], np.float64)
    buckets = metrics.bucket_by_yaw(errors, yaw)
    seconds = time.perf_counter() - t0
    res = EvalResult("aflw2000", "AFLW2000-3D (68 pts)", pred.name, list(r["name"]), yaw,
                     errors, buckets, seconds,
                     _settings(root, weights, morphable, teacher, device, batch_size,
                               optimize))
    res.info["optimized"] = r["optimized"]
    if out is not None:
        res.info["files"] = res.write(out)
    return res
