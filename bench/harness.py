"""Benchmark harness: every measurement runs beside its baseline in the same
process and reports median, IQR and the ratio baseline/candidate.

A suite module (``bench/bench_<family>.py``) defines ``cases(device, quick)``
returning a list of :class:`Case`. ``python -m bench.run`` runs them all.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from typing import Callable, List, Optional

import torch
from torch.utils import benchmark


@dataclasses.dataclass
class Case:
    """One comparison.

    name:       what is measured (sizes included)
    fn:         the candidate (our op), called with no arguments
    baseline:   the baseline (reference, matmul, torch.zeros...), or None
    baseline_name: label of the baseline
    target:     text of the target, e.g. ">= 10x reference" (reported, not asserted)
    target_ratio: the ratio baseline/candidate the target asks for (>=), or None;
                for "within Kx of" targets use 1/K.
    threads:    torch.set_num_threads for this case (None: leave as is)
    extra:      callable returning a dict of extra figures (e.g. bandwidth bound)
    """

    name: str
    fn: Callable[[], object]
    baseline: Optional[Callable[[], object]] = None
    baseline_name: str = "reference"
    target: str = ""
    target_ratio: Optional[float] = None
    threads: Optional[int] = None
    extra: Optional[Callable[[], dict]] = None


def _sync(device: str):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str, min_run_time: float = 0.5) -> dict:
    """Median and IQR (seconds) of ``fn`` with ``torch.utils.benchmark``,
    synchronising the GPU inside the timed region."""

    def timed():
        fn()
        _sync(device)

    timed()  # warm-up (and lazy initialisation)
    t = benchmark.Timer(stmt="timed()", globals={"timed": timed})
    m = t.blocked_autorange(min_run_time=min_run_time)
    return {"median_s": m.median, "iqr_s": m.iqr, "runs": len(m.times)}


def run_case(case: Case, device: str, min_run_time: float = 0.5) -> dict:
    old = torch.get_num_threads()
    if case.threads is not None:
        torch.set_num_threads(case.threads)
    try:
        res = {"name": case.name, "device": device, "threads": torch.get_num_threads(),
               "target": case.target}
        res["ours"] = measure(case.fn, device, min_run_time)
        if case.baseline is not None:
            res["baseline_name"] = case.baseline_name
            res["baseline"] = measure(case.baseline, device, min_run_time)
            res["ratio"] = res["baseline"]["median_s"] / res["ours"]["median_s"]
            if case.target_ratio is not None:
                res["target_met"] = res["ratio"] >= case.target_ratio
        if case.extra is not None:
            res.update(case.extra())
    finally:
        torch.set_num_threads(old)
    return res


def environment() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        commit = ""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    env = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": " ".join(sys.argv),
    }
    return env


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:8.1f} us"
    if s < 1:
        return f"{s * 1e3:8.3f} ms"
    return f"{s:8.3f} s "


def format_row(r: dict) -> str:
    ours = r["ours"]
    line = f"{r['name']:<58s} {fmt_time(ours['median_s'])} (IQR {fmt_time(ours['iqr_s']).strip()})"
    if "ratio" in r:
        line += (f" | {r['baseline_name']}: {fmt_time(r['baseline']['median_s'])}"
                 f" | ratio {r['ratio']:6.2f}x")
    if r.get("target"):
        met = r.get("target_met")
        flag = "" if met is None else (" MET" if met else " MISSED")
        line += f" | target {r['target']}{flag}"
    for k in ("bound", "note"):
        if k in r:
            line += f" | {k}: {r[k]}"
    return line


def write_json(results: List[dict], path: str) -> None:
    with open(path, "w") as f:
        json.dump({"environment": environment(), "results": results}, f, indent=1)
