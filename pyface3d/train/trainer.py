"""Training loop of the 3D network (``pyface3d train 3d --config FILE``).

Progress bar, checkpoints (every epoch and every ``checkpoint_every_steps``) with
exact resume (including mid-epoch), AMP on CUDA, DistributedDataParallel under
``torchrun`` (NCCL on CUDA, gloo on the CPU), CSV and TensorBoard logs and
deterministic seeding. Ctrl-C writes a checkpoint before exiting; running the
same command again resumes from it.
"""
from __future__ import annotations

import csv
import math
import os
import pathlib
import random
import time
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Sampler

from . import distributed
from .config import TrainConfig

CHECKPOINT_VERSION = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class EpochSampler(Sampler):
    """A seeded permutation per epoch (the same on every rank), sharded over ranks,
    optionally skipping the first ``skip`` samples of this rank (mid-epoch resume)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1,
                 batch_size: int = 1):
        self.n, self.seed, self.rank, self.world = n, seed, rank, world_size
        per_rank = n // world_size
        self.per_rank = (per_rank // batch_size) * batch_size  # whole batches only
        if self.per_rank == 0:
            raise ValueError(f"dataset of {n} samples is too small for batch_size "
                             f"{batch_size} on {world_size} process(es)")
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1000003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        mine = perm[self.rank:self.rank + self.per_rank * self.world:self.world][:self.per_rank]
        return iter(mine[self.skip:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def _lr_lambda(warmup_steps: int, total_steps: int):
    def f(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return f


def save_checkpoint(path: pathlib.Path, state: Dict[str, Any]) -> None:
    """Atomic write: a crash never leaves a truncated checkpoint behind."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: pathlib.Path, map_location="cpu") -> Dict[str, Any]:
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {ckpt.get('version')} is not "
                         f"{CHECKPOINT_VERSION}")
    return ckpt


class CSVLog:
    FIELDS = ["epoch", "step", "loss", "lr", "images_per_s", "time", "val_nme"]

    def __init__(self, path: pathlib.Path):
        self.path = path
        new = not path.exists()
        self.f = open(path, "a", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=self.FIELDS)
        if new:
            self.w.writeheader()

    def write(self, row: Dict[str, Any]) -> None:
        self.w.writerow(row)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def build_datasets(cfg: TrainConfig, morphable):
    from . import datasets as ds_registry

    parts = [ds_registry.build(entry, morphable) for entry in cfg.data]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


@torch.no_grad()
def validate(net: torch.nn.Module, morphable, dataset, device, batch_size: int = 64,
             workers: int = 0) -> float:
    """Mean 68-landmark NME (2D, normalised by sqrt(w*h) of the ground-truth box) of
    ``net`` on ``dataset``: ground truth from the samples' ``landmarks`` (model/crop
    frame) when present, else reconstructed from their ``params``."""
    from ..metrics import nme

    was_training = net.training
    net.eval()
    errs = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    p_mean = morphable.param_mean.to(device)
    p_std = morphable.param_std.to(device)
    for batch in loader:
        pred = net(batch["image"].to(device)) * p_std + p_mean
        lp = morphable.reconstruct(pred, landmarks_only=True)[..., :2]
        if "landmarks" in batch:
            lg = batch["landmarks"].to(device)[..., :2].to(lp.dtype)
        else:
            lg = morphable.reconstruct(batch["params"].to(device), landmarks_only=True)[..., :2]
        errs.append(torch.as_tensor(nme(lp, lg)).reshape(-1).cpu())
    net.train(was_training)
    return torch.cat(errs).mean().item()


def train(cfg: TrainConfig, device: str = "auto", progress: bool = True) -> Dict[str, Any]:
    """Train (or resume) as configured. Returns a summary dict (final loss, steps,
    throughput, paths). Under torchrun every rank calls this."""
    from .. import losses, models
    from ..morphable import resolve as resolve_morphable

    info = distributed.setup(device)
    out = pathlib.Path(cfg.out_dir)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    mm = resolve_morphable(cfg.morphable).to(info.device)
    dataset = build_datasets(cfg, mm)
    sampler = EpochSampler(len(dataset), cfg.seed, info.rank, info.world_size, cfg.batch_size)
    use_cuda = info.device.type == "cuda"
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=cfg.workers, pin_memory=use_cuda, drop_last=True,
                        worker_init_fn=_worker_init, persistent_workers=False)
    val_set = None
    if cfg.val is not None:
        from . import datasets as ds_registry

        val_set = ds_registry.build(cfg.val, mm)
    net = models.create(cfg.model, num_params=mm.num_params, **cfg.model_kwargs).to(info.device)
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[info.local_rank] if use_cuda else None)
    loss_fn = losses.make_loss(cfg.loss, mm, **cfg.loss_kwargs)
    if cfg.optimizer == "adamw":
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                              weight_decay=cfg.weight_decay)
    steps_per_epoch = len(sampler) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"the training data has {len(sampler)} samples per rank, fewer than "
                         f"one batch (batch_size={cfg.batch_size})")
    if cfg.total_steps:
        total = int(cfg.total_steps)
        n_epochs = -(-total // steps_per_epoch)
    else:
        total = cfg.epochs * steps_per_epoch
        n_epochs = cfg.epochs
    # max_steps stops early without changing the schedule, so a short run is an exact
    # prefix of a longer one
    stop_at = min(total, cfg.max_steps) if cfg.max_steps else total
    warmup = int(cfg.warmup_steps) if cfg.warmup_steps else \
        min(int(cfg.warmup_epochs * steps_per_epoch), total // 10 if cfg.total_steps else total)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(warmup, total))
    ckpt_path = out / "last.pt"
    if cfg.init and not ckpt_path.exists():  # a resumed run restores its own weights below
        init = load_checkpoint(pathlib.Path(cfg.init))
        if init.get("morphable_sha256") not in (None, mm.sha256()):
            raise ValueError(f"config `init`: {cfg.init} was trained with morphable model "
                             f"{init['morphable_sha256'][:12]}, not {mm.sha256()[:12]}")
        if init.get("model_name") not in (None, cfg.model):
            raise ValueError(f"config `init`: {cfg.init} holds a {init['model_name']!r} "
                             f"network, the config trains {cfg.model!r}")
        _unwrap(net).load_state_dict({k: v.float() if v.is_floating_point() else v
                                      for k, v in init["model"].items()})
    amp = cfg.amp and use_cuda
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    p_mean = mm.param_mean.to(info.device)
    p_std = mm.param_std.to(info.device)

    epoch, epoch_step, step = 0, 0, 0
    resumed = False
    if ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        if ck["morphable_sha256"] != mm.sha256():
            raise ValueError(f"{ckpt_path} was trained with morphable model "
                             f"{ck['morphable_sha256'][:12]}, not {mm.sha256()[:12]}")
        _unwrap(net).load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        epoch, epoch_step, step = ck["epoch"], ck["epoch_step"], ck["step"]
        torch.set_rng_state(ck["rng_cpu"])
        resumed = epoch_step > 0  # mid-epoch: keep the saved random stream
        if info.is_main:
            print(f"resuming from {ckpt_path}: epoch {epoch}, step {step}")

    log = CSVLog(out / "train_log.csv") if info.is_main else None
    tb = None
    if info.is_main and cfg.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            tb = None

    def state() -> Dict[str, Any]:
        return {"version": CHECKPOINT_VERSION, "model": _unwrap(net).state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch, "epoch_step": epoch_step,
                "step": step, "rng_cpu": torch.get_rng_state(), "config": cfg.to_dict(),
                "model_name": cfg.model, "model_kwargs": cfg.model_kwargs,
                "morphable_sha256": mm.sha256()}

    last_loss = float("nan")
    last_val = float("nan")
    best_val = float("inf")
    if ckpt_path.exists() and (out / "best.pt").exists():  # resuming: keep the best so far
        best_val = float(load_checkpoint(out / "best.pt").get("val_nme", float("inf")))
    t_start = time.perf_counter()
    images = 0
    done = step >= stop_at
    val_step = -1

    def run_val() -> None:
        nonlocal last_val, best_val, val_step
        if val_set is None or val_step == step:
            return
        val_step = step
        v = validate(_unwrap(net), mm, val_set, info.device, cfg.batch_size)
        last_val = v
        log.write({"epoch": epoch - (1 if epoch_step == 0 else 0), "step": step,
                   "val_nme": f"{v:.6f}", "time": f"{time.perf_counter() - t_start:.1f}"})
        if tb:
            tb.add_scalar("val/nme", v, step)
        if v < best_val:
            best_val = v
            save_checkpoint(out / "best.pt", {
                "version": CHECKPOINT_VERSION, "model": _unwrap(net).state_dict(),
                "model_name": cfg.model, "model_kwargs": cfg.model_kwargs,
                "num_params": mm.num_params, "morphable_sha256": mm.sha256(),
                "config": cfg.to_dict(), "val_nme": v, "step": step})

    restore = _catch_stop_signals()
    try:
        while epoch < n_epochs and not done:
            sampler.set_epoch(epoch, skip=epoch_step * cfg.batch_size)
            _set_dataset_epoch(dataset, epoch)
            if resumed:  # continue the checkpoint's random stream (dropout, ...) exactly
                resumed = False
            else:
                seed_everything(cfg.seed + 7919 * epoch + 104729 * info.rank)
            net.train()
            it = loader
            if progress and info.is_main:
                from tqdm import tqdm

                it = tqdm(loader, total=steps_per_epoch, initial=epoch_step,
                          desc=f"epoch {epoch + 1}/{n_epochs}", dynamic_ncols=True)
            t0 = time.perf_counter()
            for batch in it:
                img = batch["image"].to(info.device, non_blocking=True)
                target = (batch["params"].to(info.device, non_blocking=True) - p_mean) / p_std
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp):
                    pred = net(img)
                loss = loss_fn(pred.float(), target)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss at step {step}: {loss.item()}")
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                step += 1
                epoch_step += 1
                images += img.shape[0] * info.world_size
                last_loss = distributed.all_reduce_mean(loss.detach(), info).item()
                if info.is_main:
                    if hasattr(it, "set_postfix"):
                        it.set_postfix(loss=f"{last_loss:.4f}")
                    if step % cfg.log_every == 0 or step == stop_at:
                        dt = time.perf_counter() - t0
                        row = {"epoch": epoch, "step": step, "loss": f"{last_loss:.6f}",
                               "lr": f"{sched.get_last_lr()[0]:.3e}",
                               "images_per_s": f"{images / max(dt, 1e-9):.1f}",
                               "time": f"{time.perf_counter() - t_start:.1f}"}
                        log.write(row)
                        if tb:
                            tb.add_scalar("train/loss", last_loss, step)
                            tb.add_scalar("train/lr", sched.get_last_lr()[0], step)
                        images, t0 = 0, time.perf_counter()
                    if cfg.val_every_steps and step % cfg.val_every_steps == 0:
                        run_val()
                    if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
                        save_checkpoint(ckpt_path, state())
                if step >= stop_at:
                    done = True
                    break
            if not done or epoch_step >= steps_per_epoch:
                epoch += 1
                epoch_step = 0
            if info.is_main:
                if epoch_step == 0 or (done and step >= total):
                    run_val()
                save_checkpoint(ckpt_path, state())
    except KeyboardInterrupt:
        if info.is_main:
            save_checkpoint(ckpt_path, state())
            print(f"\ninterrupted: checkpoint written to {ckpt_path}; run the same command "
                  "to resume")
        raise
    finally:
        restore()
        if log:
            log.close()
        if tb:
            tb.close()
    result = {"final_loss": last_loss, "val_nme": last_val, "steps": step, "epochs": epoch,
              "checkpoint": str(ckpt_path)}
    if info.is_main:
        final = out / "model.pt"
        save_checkpoint(final, {"version": CHECKPOINT_VERSION,
                                "model": _unwrap(net).state_dict(), "model_name": cfg.model,
                                "model_kwargs": cfg.model_kwargs,
                                "num_params": mm.num_params,
                                "morphable_sha256": mm.sha256(), "config": cfg.to_dict()})
        result["model"] = str(final)
    distributed.cleanup()
    return result


def _set_dataset_epoch(dataset, epoch: int) -> None:
    """Datasets with seeded augmentation draw per (seed, epoch, index)."""
    for d in getattr(dataset, "datasets", [dataset]):
        if hasattr(d, "set_epoch"):
            d.set_epoch(epoch)


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


def _catch_stop_signals():
    """While training: SIGTERM (what schedulers and session ends send) and SIGINT (which a
    shell's background jobs start with ignored) raise KeyboardInterrupt, so the loop writes
    its checkpoint before stopping. Returns a function restoring the previous handlers (a
    no-op outside the main thread, where signals cannot be handled)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop)

    def restore():
        for s, h in old.items():
            signal.signal(s, h)
    return restore


def load_trained(path, morphable, map_location="cpu") -> torch.nn.Module:
    """Load ``model.pt`` written by :func:`train`, refusing weights trained with
    another morphable model (different sha256)."""
    from .. import models

    ck = load_checkpoint(pathlib.Path(path), map_location)
    if ck["morphable_sha256"] != morphable.sha256():
        raise ValueError(f"{path}: weights were trained with morphable model "
                         f"{ck['morphable_sha256'][:12]}, not with {morphable.sha256()[:12]} "
                         "(pass the model they were trained with)")
    net = models.create(ck["model_name"], num_params=ck["num_params"], **ck["model_kwargs"])
    net.load_state_dict(ck["model"])
    return net.eval()
