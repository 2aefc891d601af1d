"""ONNX Runtime vs torch eager for the exported networks, side by side in one process:
``python -m bench.bench_deploy [--models shufflenet3d,mobilenet_v1_x0.5] [--batch 1,8,64]
[--threads 1,2] [--min-run-time 0.5] [--json out.json]``.

For every model (random weights, seed 0: latency only) and thread count:

* ``network``: the exported ``params`` head (network + de-whitening) through
  :class:`pyface3d.deploy.OrtRunner`, against the torch network (eval, ``no_grad``);
* ``network + landmarks``: the exported ``landmarks`` head, against torch's network +
  ``MorphableModel.unwhiten`` + ``reconstruct(landmarks_only=True)`` (the compiled op) +
  the crop-frame flip (what evaluation runs);
* ``per-face path`` (batch 1): a 640x480 BGR frame -> ``crop_image(method="exact")`` (one
  warpAffine) -> normalise to (1, 3, 120, 120) -> network + landmarks -> ``crop_to_image``
  back to frame pixels; the issue's target is <= 3 ms with ONNX Runtime.

Each line: median ms per call (IQR), ms per face, faces/s, and the ratio torch / ORT.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from typing import List

import numpy as np
import torch
from tqdm import tqdm

from bench import harness
from pyface3d import models
from pyface3d.data.roi import crop_image, crop_to_image, roi_from_box
from pyface3d.deploy import OrtRunner, UntrainedWarning, export_onnx
from pyface3d.morphable import resolve

TARGET_MS = 3.0


def _ints(text: str) -> List[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return vals


def _row(name, threads, batch, ort, torch_m) -> dict:
    return {"case": name, "threads": threads, "batch": batch, "ort": ort, "torch": torch_m,
            "ratio": torch_m["median_s"] / ort["median_s"]}


def bench_model(name: str, batches: List[int], threads: List[int], min_run_time: float,
                workdir: str, mm) -> List[dict]:
    net = models.create(name, num_params=mm.num_params, seed=0).eval()
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrainedWarning)
        for head in ("params", "landmarks"):
            paths[head] = os.path.join(workdir, f"{name}_{head}.onnx")
            export_onnx(net, paths[head], head=head, morphable=mm)
    pm, ps = mm.param_mean, mm.param_std

    def torch_params(x):
        with torch.no_grad():
            return net(x) * ps + pm

    def torch_landmarks(x):
        with torch.no_grad():
            v = mm.reconstruct(net(x) * ps + pm, landmarks_only=True)
            return torch.stack((v[..., 0] - 1, 120 - v[..., 1], v[..., 2]), -1)

    rows = []
    g = torch.Generator().manual_seed(0)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    roi = roi_from_box(np.array([250.0, 150.0, 390.0, 310.0]))
    rois = roi[None]
    for th in threads:
        torch.set_num_threads(th)
        runners = {h: OrtRunner(p, threads=th) for h, p in paths.items()}
        for b in batches:
            x = torch.randn(b, 3, 120, 120, generator=g)
            xn = x.numpy()
            for head, tfn in (("params", torch_params), ("landmarks", torch_landmarks)):
                r = runners[head]
                ort = harness.measure(lambda r=r: r.run(xn), "cpu", min_run_time)
                tm = harness.measure(lambda tfn=tfn: tfn(x), "cpu", min_run_time)
                label = "network" if head == "params" else "network + landmarks"
                rows.append(_row(f"{name}: {label}", th, b, ort, tm))

        def prep():
            c = crop_image(frame, roi, 120, method="exact")
            return np.ascontiguousarray(
                ((c.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None])

        lm_runner = runners["landmarks"]

        def path_ort():
            lm = lm_runner.run(prep())["landmarks"]
            return crop_to_image(lm, rois)

        def path_torch():
            lm = torch_landmarks(torch.from_numpy(prep())).numpy()
            return crop_to_image(lm, rois)

        crop_only = harness.measure(prep, "cpu", min_run_time)
        ort = harness.measure(path_ort, "cpu", min_run_time)
        tm = harness.measure(path_torch, "cpu", min_run_time)
        row = _row(f"{name}: per-face path", th, 1, ort, tm)
        row["crop_ms"] = crop_only["median_s"] * 1e3
        row["target_ms"] = TARGET_MS
        row["target_met"] = ort["median_s"] * 1e3 <= TARGET_MS
        rows.append(row)
    return rows


def _fmt(m, b) -> str:
    ms = m["median_s"] * 1e3
    return f"{ms:.2f} ({m['iqr_s'] * 1e3:.2f}) | {ms / b:.2f} | {b / m['median_s']:.0f}"


def table(rows: List[dict]) -> str:
    out = ["| case | threads | batch | ORT ms (IQR) | ORT ms/face | ORT faces/s | "
           "torch ms (IQR) | torch ms/face | torch faces/s | torch / ORT |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['case']} | {r['threads']} | {r['batch']} | {_fmt(r['ort'], r['batch'])}"
                   f" | {_fmt(r['torch'], r['batch'])} | {r['ratio']:.2f} |")
    notes = [f"{r['case']}, {r['threads']} thread(s): crop + normalise "
             f"{r['crop_ms']:.3f} ms; ORT path {r['ort']['median_s'] * 1e3:.2f} ms vs "
             f"target <= {r['target_ms']} ms: {'met' if r['target_met'] else 'NOT met'}"
             for r in rows if "target_ms" in r]
    return "\n".join(out + [""] + notes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="shufflenet3d,mobilenet_v1_x0.5")
    p.add_argument("--batch", type=_ints, default=[1, 8, 64])
    p.add_argument("--threads", type=_ints, default=[1, 2])
    p.add_argument("--min-run-time", type=float, default=0.5)
    p.add_argument("--morphable", default="ict")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in models.list_models()]
    if unknown:
        p.error(f"--models: unknown {unknown}; available: {models.list_models()}")
    mm = resolve(args.morphable)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in tqdm(names, desc="models"):
            rows += bench_model(n, args.batch, args.threads, args.min_run_time, d, mm)
    import onnxruntime

    env = harness.environment()
    env.update({"onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                "cpus": os.cpu_count()})
    print(table(rows))
    print(json.dumps(env))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
