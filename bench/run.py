"""Run the kernel benchmark suites: ``python -m bench.run [--suite NAME] [--device cpu|cuda]``.

Each row is our op beside its baseline, measured in the same process, with the
ratio baseline / ours. Results also go to a JSON file (``--json``).
"""
import argparse
import importlib
import sys

import torch

from bench import harness

SUITES = ["heatmap", "morphable", "wing", "raster"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--suite", action="append", choices=SUITES,
                   help="suite(s) to run (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    p.add_argument("--min-run-time", type=float, default=0.5)
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device available", file=sys.stderr)
        return 2
    env = harness.environment()
    print("# " + ", ".join(f"{k}={v}" for k, v in env.items()))
    results = []
    for suite in args.suite or SUITES:
        mod = importlib.import_module(f"bench.bench_{suite}")
        print(f"\n## {suite} ({args.device})")
        for case in mod.cases(args.device, args.quick):
            r = harness.run_case(case, args.device, 0.1 if args.quick else args.min_run_time)
            r["suite"] = suite
            results.append(r)
            print(harness.format_row(r), flush=True)
    if args.json:
        harness.write_json(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
