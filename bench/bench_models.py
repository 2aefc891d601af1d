"""Table 6.2 columns we can measure for every registry model:
``python -m bench.bench_models [--quick] [--models a,b] [--batch 1,64] [--json out.json]``.

For each model: parameters (M), GMACs at 1x3x120x120 (and 2*MACs), and forward latency
(torch eager, eval mode, ``torch.no_grad``) at each batch size, the median of
``torch.utils.benchmark`` runs (with IQR). ``--device cuda`` times on the GPU (synchronised
inside the timed region).
"""
from __future__ import annotations

import argparse
import sys
from typing import List

import torch
from tqdm import tqdm

from bench import harness
from pyface3d import models


def bench_model(name: str, batches: List[int], device: str, min_run_time: float,
                size: int = 120) -> dict:
    """Params, MACs and per-batch latency (seconds) of registry model ``name``."""
    net = models.create(name, seed=0).to(device).eval()
    macs = models.count_flops(net, (1, 3, size, size))
    row = {"name": name, "device": device, "params": models.count_params(net),
           "macs": macs, "flops_2x": 2 * macs, "latency": {}}
    g = torch.Generator().manual_seed(0)
    for b in batches:
        x = torch.randn(b, 3, size, size, generator=g).to(device)

        def fwd(x=x):
            with torch.no_grad():
                net(x)

        m = harness.measure(fwd, device, min_run_time)
        row["latency"][str(b)] = m
    return row


def format_row(r: dict, batches: List[int]) -> str:
    cols = [f"{r['name']:<18s}", f"{r['params'] / 1e6:8.2f}", f"{r['macs'] / 1e9:6.3f}",
            f"{r['flops_2x'] / 1e9:10.3f}"]
    for b in batches:
        m = r["latency"][str(b)]
        cols.append(f"{m['median_s'] * 1e3:9.2f} ({m['iqr_s'] * 1e3:6.2f})")
    return " | ".join(cols)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short timing runs (0.2 s each)")
    p.add_argument("--models", default=None,
                   help=f"comma-separated subset of: {', '.join(models.list_models())}")
    p.add_argument("--batch", default="1,64", help="comma-separated batch sizes (default 1,64)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--min-run-time", type=float, default=1.0)
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)
    names = models.list_models() if args.models is None else \
        [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.list_models()]
    if unknown:
        p.error(f"--models: unknown {unknown}; available: {', '.join(models.list_models())}")
    try:
        batches = [int(b) for b in args.batch.split(",")]
        if any(b <= 0 for b in batches):
            raise ValueError
    except ValueError:
        p.error(f"--batch must be comma-separated positive ints, got {args.batch!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device available", file=sys.stderr)
        return 2
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    env = harness.environment()
    print("# " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"# latency: forward, eval, no_grad, {args.device}, median (IQR) in ms")
    header = " | ".join([f"{'model':<18s}", "params M", " GMACs", "GFLOPs(2x)"]
                        + [f"{'batch ' + str(b) + ' ms (IQR)':>18s}" for b in batches])
    print(header)
    results = []
    t = min(0.2, args.min_run_time) if args.quick else args.min_run_time
    for name in tqdm(names, desc="models", file=sys.stderr):
        r = bench_model(name, batches, args.device, t)
        results.append(r)
        tqdm.write(format_row(r, batches), file=sys.stdout)
    if args.json:
        harness.write_json(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
