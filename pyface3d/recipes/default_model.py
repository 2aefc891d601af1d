"""The default model's recipe (thesis chapters 3 and 6 on what this workplace has):
real faces with labels (300W train hand labels; LFW / UTKFace pseudo-labelled by two
teachers and fitted with the ICT model), the same faces 3D-rotated by face profiling, and
synthetic faces; the training mixes R, RA, S and RA+S; their evaluation on aflw-dev.

Everything is written under one cache folder (``$PYFACE3D_CACHE/default_model``, default
``~/.cache/pyface3d/default_model``), never into the repository; every stage skips what it
finished before, so rerunning a command resumes it and a lost cache is rebuilt from
``$PYFACE3D_SHARED``::

    <cache>/labels/<source>/labels.json 62-parameter ICT labels (ImageLabelsDataset format),
                                        with rejected.json; teacher outputs in labels/cache
    <cache>/profile/<source>/           face-profiled views (+ labels.json)
    <cache>/synth/                      synthetic faces (pyface3d synth layout)
    <cache>/runs/<mix>/                 training runs (config.toml, checkpoints, logs)
    <cache>/eval/                       aflw-dev results per mix and the comparison table

aflw-dev is evaluation data: nothing here trains, selects checkpoints or tunes on it
(checkpoints are selected on the 300W dev faces).
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["Recipe", "MIXES", "REAL_SOURCES"]

#: real sources: name -> image folder under $PYFACE3D_SHARED
REAL_SOURCES = {"300w_train": "data/300w/train", "lfw": "data/faces/lfw",
                "utkface": "data/faces/utkface"}
#: the thesis's training mixes: R real, RA real + 3D-rotated real, S synthetic, RA+S
MIXES = ("R", "RA", "S", "RA+S")


def _cache_root() -> pathlib.Path:
    root = os.environ.get("PYFACE3D_CACHE")
    return pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "pyface3d"


def _shared_root() -> pathlib.Path:
    root = os.environ.get("PYFACE3D_SHARED")
    if root:
        return pathlib.Path(root)
    return pathlib.Path(__file__).resolve().parents[2].parent / "shared"


class Recipe:
    """Paths and stages of the default-model recipe.

    Args:
        cache: the recipe's folder (default ``$PYFACE3D_CACHE/default_model``).
        shared: the development data folder (default ``$PYFACE3D_SHARED``, else ``../shared``).
    """

    def __init__(self, cache=None, shared=None):
        self.cache = pathlib.Path(cache) if cache else _cache_root() / "default_model"
        self.shared = pathlib.Path(shared) if shared else _shared_root()

    # ------------------------------------------------------------------ paths
    def labels_path(self, source: str) -> pathlib.Path:
        return self.cache / "labels" / source / "labels.json"

    def profile_dir(self, source: str) -> pathlib.Path:
        return self.cache / "profile" / source

    @property
    def synth_dir(self) -> pathlib.Path:
        return self.cache / "synth"

    def run_dir(self, run: str) -> pathlib.Path:
        """A run's folder: ``runs/<run>`` (a mix's name, '+' written '_', by default)."""
        if not run or not all(c.isalnum() or c in "+-_." for c in run) or run[0] == ".":
            raise ValueError(f"run name {run!r}: use letters, digits and + - _ . only")
        return self.cache / "runs" / run.replace("+", "_")

    def images_root(self, source: str) -> pathlib.Path:
        if source not in REAL_SOURCES:
            raise ValueError(f"unknown source {source!r}; expected one of {sorted(REAL_SOURCES)}")
        return self.shared / REAL_SOURCES[source]

    def _need_shared(self) -> None:
        if not self.shared.is_dir():
            raise FileNotFoundError(f"the development data folder {self.shared} does not exist: "
                                    "set PYFACE3D_SHARED (or pass --shared)")

    # ------------------------------------------------------------------ stages
    def build_labels(self, sources: Sequence[str] = tuple(REAL_SOURCES), limit=None,
                     progress: bool = True) -> Dict[str, Any]:
        """Stage 1: labels per source (:func:`pyface3d.labels.build.build`; the MediaPipe
        teacher runs in the interpreter of ``$PYFACE3D_MEDIAPIPE_PYTHON``)."""
        from ..labels.build import build

        self._need_shared()
        return build(str(self.shared), out=str(self.cache / "labels"), sources=tuple(sources),
                     limit=limit, progress=progress)

    def build_profile(self, sources: Sequence[str] = tuple(REAL_SOURCES), views: int = 11,
                      yaw_step: float = 15.0, workers: int = 1, progress: bool = True
                      ) -> Dict[str, Any]:
        """Stage 2: face profiling of each labelled real source (11 views, 15-degree
        steps, outward first, up to 90 degrees of yaw)."""
        from ..augment import profile_folder

        self._need_shared()
        out = {}
        for s in sources:
            lab = self.labels_path(s)
            if not lab.is_file():
                raise FileNotFoundError(f"labels of {s!r} ({lab}) are missing: run "
                                        "`pyface3d recipe build --stages labels` first")
            out[s] = profile_folder(str(self.images_root(s)), str(self.profile_dir(s)),
                                    labels=str(lab), views=views, yaw_step=yaw_step,
                                    max_yaw=90.0, workers=workers, progress=progress)
        return out

    def build_synth(self, n: int = 20000, workers: int = 1, seed: int = 0,
                    progress: bool = True) -> Dict[str, Any]:
        """Stage 3: ``n`` synthetic faces at 120x120 (RGB and labels only)."""
        from ..synth import SynthConfig, generate

        cfg = SynthConfig(size=120, seed=seed, modalities=("rgb",))
        return generate(str(self.synth_dir), n, cfg, workers=workers, progress=progress)

    # ------------------------------------------------------------------ training
    def _real_entries(self) -> List[Dict[str, Any]]:
        out = []
        for s in REAL_SOURCES:
            lab = self.labels_path(s)
            if lab.is_file():
                out.append({"type": "images", "root": str(self.images_root(s)),
                            "labels": str(lab), "augment": True})
        if not out:
            raise FileNotFoundError(f"no labels under {self.cache / 'labels'}: run "
                                    "`pyface3d recipe build` first")
        return out

    def _profile_entries(self) -> List[Dict[str, Any]]:
        out = []
        for s in REAL_SOURCES:
            d = self.profile_dir(s)
            lab = d / "labels.json"
            if lab.is_file():
                out.append({"type": "images", "root": str(d), "labels": str(lab),
                            "augment": True})
        if not out:
            raise FileNotFoundError(f"no profiled views under {self.cache / 'profile'}: run "
                                    "`pyface3d recipe build --stages profile` first")
        return out

    def config(self, mix: str, epochs: int = 30, batch_size: int = 64, lr: float = 2e-3,
               workers: int = 2, synth_limit: Optional[int] = None, model: str = "shufflenet3d",
               checkpoint_every_steps: int = 200, max_steps: int = 0, total_steps: int = 0,
               val_every_steps: int = 0, init: Optional[str] = None,
               run: Optional[str] = None) -> Dict[str, Any]:
        """The training config (a dict of :class:`pyface3d.train.TrainConfig` fields) of a
        mix, trained in ``runs/<run>`` (default: the mix's name). ``total_steps`` trains
        every mix on the same budget of optimizer steps whatever its size (its cosine
        schedule ends there); ``init`` starts from a run's weights (its name: that run's
        ``best.pt``, else ``model.pt``) or a checkpoint file. Validation and checkpoint
        selection: the 300W dev faces (hand labels; landmark NME), never aflw-dev."""
        if mix not in MIXES:
            raise ValueError(f"argument `mix` must be one of {MIXES}, got {mix!r}")
        data: List[Dict[str, Any]] = []
        if mix in ("R", "RA", "RA+S"):
            data += self._real_entries()
        if mix in ("RA", "RA+S"):
            data += self._profile_entries()
        if mix in ("S", "RA+S"):
            if not (self.synth_dir / "layout.json").is_file():
                raise FileNotFoundError(f"no synthetic faces in {self.synth_dir}: run "
                                        "`pyface3d recipe build --stages synth` first")
            e = {"type": "synth", "root": str(self.synth_dir), "augment": True}
            if synth_limit:
                e["limit"] = int(synth_limit)
            data.append(e)
        dev = self.shared / "data" / "300w" / "dev" / "lfpw_test"
        if init is not None and not pathlib.Path(init).is_file():
            d = self.run_dir(init)
            w = next((d / f for f in ("best.pt", "model.pt") if (d / f).is_file()), None)
            if w is None:
                raise FileNotFoundError(f"--init {init!r}: neither a checkpoint file nor a "
                                        f"trained run (no best.pt / model.pt in {d})")
            init = str(w)
        return {"out_dir": str(self.run_dir(run or mix)), "data": data, "model": model,
                "morphable": "ict", "loss": "l2", "loss_kwargs": {"lambda2": 0.7},
                "epochs": epochs, "batch_size": batch_size, "lr": lr, "workers": workers,
                "seed": 0, "checkpoint_every_steps": checkpoint_every_steps,
                "max_steps": max_steps, "total_steps": total_steps,
                "val_every_steps": val_every_steps, "init": init,
                "val": {"type": "images", "root": str(dev)} if dev.is_dir() else None}

    def write_config(self, mix: str, **kw) -> pathlib.Path:
        """Write the mix's config as JSON into its run folder (what ``pyface3d train 3d
        --config`` reads) and return its path."""
        cfg = self.config(mix, **kw)
        d = pathlib.Path(cfg["out_dir"])
        d.mkdir(parents=True, exist_ok=True)
        (d / "recipe.json").write_text(json.dumps({"mix": mix}))
        path = d / "config.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(cfg, indent=1))
        os.replace(tmp, path)
        return path

    def run_mix(self, run: str) -> str:
        """The mix a run was trained on (``runs/<run>/recipe.json``; a mix's own name)."""
        f = self.run_dir(run) / "recipe.json"
        if f.is_file():
            return json.loads(f.read_text())["mix"]
        if run in MIXES:
            return run
        raise FileNotFoundError(f"run {run!r}: no {f}")

    def train(self, mix: str, device: str = "auto", progress: bool = True, **kw):
        """Train (or resume) a mix."""
        from ..train import load_config, train

        return train(load_config(str(self.write_config(mix, **kw))), device=device,
                     progress=progress)

    # ------------------------------------------------------------------ shipping
    def ship(self, run: str, which: str = "best", package_dir=None) -> Dict[str, Any]:
        """Copy a trained run (a mix's name or a ``--run`` name) into the package as the default weights: the run's
        ``best.pt`` (selected on 300W dev) or ``model.pt`` (``which="final"``), weights
        converted to float16, written to ``pyface3d/assets/pyface3d_default.pt`` with the
        morphable model's sha256 (it must be the shipped model's), the training config and
        the aflw-dev comparison when ``recipe eval`` wrote one; ``SHA256SUMS`` is updated."""
        import hashlib

        import torch

        from ..morphable import resolve
        from ..train.trainer import load_checkpoint, save_checkpoint

        if which not in ("best", "final"):
            raise ValueError(f"argument `which` must be 'best' or 'final', got {which!r}")
        src = self.run_dir(run) / ("best.pt" if which == "best" else "model.pt")
        if not src.is_file():
            raise FileNotFoundError(f"{src} does not exist: train it first "
                                    f"(`pyface3d recipe train --mix MIX --run {run}`)")
        mix = self.run_mix(run)
        ck = load_checkpoint(src)
        mm = resolve("ict")
        if ck["morphable_sha256"] != mm.sha256():
            raise ValueError(f"{src} was trained with morphable model "
                             f"{ck['morphable_sha256'][:12]}, not the shipped one "
                             f"({mm.sha256()[:12]}): retrain with the shipped model")
        out = {k: ck[k] for k in ("version", "model_name", "num_params", "model_kwargs",
                                  "morphable_sha256")}
        out["model"] = {k: (v.half() if v.is_floating_point() else v)
                        for k, v in ck["model"].items()}
        out["recipe"] = {"mix": mix, "run": run, "checkpoint": which, "config": ck.get("config"),
                         "val_nme_300w_dev": ck.get("val_nme"), "step": ck.get("step")}
        cmp = self.cache / "eval" / "comparison.md"
        if cmp.is_file():
            out["recipe"]["aflw_dev"] = cmp.read_text()
        pkg = pathlib.Path(package_dir) if package_dir else \
            pathlib.Path(__file__).resolve().parents[1] / "assets"
        dst = pkg / "pyface3d_default.pt"
        save_checkpoint(dst, out)
        digest = hashlib.sha256(dst.read_bytes()).hexdigest()
        sums = pkg / "SHA256SUMS"
        lines = [ln for ln in (sums.read_text().splitlines() if sums.is_file() else [])
                 if ln.strip() and not ln.endswith(" pyface3d_default.pt")]
        lines.append(f"{digest}  pyface3d_default.pt")
        sums.write_text("\n".join(sorted(lines, key=lambda ln: ln.split()[-1])) + "\n")
        return {"path": str(dst), "sha256": digest, "bytes": dst.stat().st_size,
                "params": sum(v.numel() for v in out["model"].values())}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, mixes: Sequence[str] = MIXES, teacher: bool = True, device="cpu",
                 progress: bool = True) -> str:
        """aflw-dev NME per yaw bucket of every trained run named in ``mixes`` (mixes' or
        ``--run`` names; the run's ``best.pt`` -- what ``ship`` ships, selected on 300W dev --
        else its ``model.pt``) and of the 3DDFA_V2 mb05 teacher, measured the same way; writes
        ``<cache>/eval/comparison.md`` and a CED plot of every row
        (``comparison_ced.png``) and returns the table."""
        from ..eval import evaluate_aflw

        root = self.shared / "data" / "aflw-dev"
        if not root.is_dir():
            raise FileNotFoundError(f"aflw-dev not found at {root}")
        rows = []
        for mix in mixes:
            d = self.run_dir(mix)
            w = next((d / f for f in ("best.pt", "model.pt") if (d / f).is_file()), None)
            if w is None:
                continue
            res = evaluate_aflw(str(root), weights=str(w), out=str(self.cache / "eval" / mix),
                                device=device, progress=progress)
            label = mix if mix in MIXES else f"{self.run_mix(mix)}, run {mix}"
            rows.append((f"pyface3d {label} ({w.name})", res))
        if teacher:
            t = self.shared / "assets" / "teachers" / "3ddfa_v2_mb05"
            res = evaluate_aflw(str(root), teacher=str(t), out=str(self.cache / "eval" / "teacher"),
                                device=device, progress=progress)
            rows.append(("3DDFA_V2 mb05 (teacher)", res))
        lines = ["| model | [0, 30) | [30, 60) | [60, 90] | mean |", "|---|---|---|---|---|"]
        for name, res in rows:
            s = res.summary()
            vals = list(s["nme_buckets_percent"]) + [s["nme_mean_percent"]]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")
        table = "\n".join(lines) + "\n"
        (self.cache / "eval").mkdir(parents=True, exist_ok=True)
        (self.cache / "eval" / "comparison.md").write_text(table)
        if rows:
            from ..metrics import plot_ced

            plot_ced({name: res.errors for name, res in rows},
                     str(self.cache / "eval" / "comparison_ced.png"), max_error=0.1,
                     title="aflw-dev (21 points, visible-box normalisation)",
                     thresholds=(0.07,))
        return table

