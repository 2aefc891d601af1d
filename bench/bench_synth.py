"""Throughput of the synthetic face generator (``pyface3d synth``), all modalities.

    python -m bench.bench_synth [--n 120] [--sizes 120,256] [--workers 1,2]
                                [--device cpu|cuda] [--morphable ict] [--json out.json]

Per image size: the in-process cost of one sample (sampling + rendering, ms, median) and of
writing its files (7 PNGs, landmarks, npz, record; ms, median), both on one thread; then
``generate()`` end to end into a fresh temporary folder for each worker count: samples/s of
wall time (pool start-up included: each spawned worker imports torch and loads the model)
and the steady rate after the first chunks (from ``generate``'s per-sample callback). Uses the default ICT-FaceKit model (needs it installed or
PYFACE3D_SHARED), or ``--morphable PATH``.
"""
import argparse
import json
import os
import shutil
import statistics
import tempfile
import time

import torch

from bench.harness import environment


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=120, help="samples per generate() run")
    p.add_argument("--sizes", default="120,256")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--device", default="cpu")
    p.add_argument("--morphable", default="ict")
    p.add_argument("--calls", type=int, default=40, help="in-process sample/write calls")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from pyface3d.morphable import resolve
    from pyface3d.synth import FaceSynthesizer, SynthConfig, generate
    from pyface3d.synth.writer import write_sample

    sizes = [int(s) for s in args.sizes.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device available")
        return 2
    mm = resolve(args.morphable)
    env = environment()
    print("# " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(f"# model {mm.name}: N={mm.N}, F={mm.F}, P={mm.num_params}; device {args.device}")
    rows = []
    for S in sizes:
        cfg = SynthConfig(size=S, seed=0, device=args.device)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        syn = FaceSynthesizer(mm, cfg)
        syn.sample(0)
        t_s, t_w = [], []
        tmp = tempfile.mkdtemp(prefix="bench_synth_")
        try:
            for i in range(args.calls):
                t0 = time.perf_counter()
                s = syn.sample(i)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t1 = time.perf_counter()
                write_sample(tmp, s, cfg, "bench")
                t2 = time.perf_counter()
                t_s.append(t1 - t0)
                t_w.append(t2 - t1)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            torch.set_num_threads(threads)
        row = {"size": S, "sample_ms": 1e3 * statistics.median(t_s),
               "write_ms": 1e3 * statistics.median(t_w)}
        print(f"size {S}: sample {row['sample_ms']:.1f} ms, write {row['write_ms']:.1f} ms "
              f"(median of {args.calls}, one thread)", flush=True)
        for w in workers:
            tmp = tempfile.mkdtemp(prefix="bench_synth_")
            stamps = []
            try:
                t0 = time.perf_counter()
                res = generate(os.path.join(tmp, "out"), args.n, cfg, model=mm, workers=w,
                               progress=False,
                               callback=lambda i: stamps.append(time.perf_counter()))
                dt = time.perf_counter() - t0
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            # steady state: after every worker delivered its first chunk
            k = min(len(stamps) - 1, max(w * 8, len(stamps) // 5))
            steady = (len(stamps) - 1 - k) / max(stamps[-1] - stamps[k], 1e-9)
            row[f"workers_{w}_samples_per_s"] = res["generated"] / dt
            row[f"workers_{w}_steady_per_s"] = steady
            print(f"size {S}: generate n={args.n} workers={w}: {dt:.1f} s, "
                  f"{res['generated'] / dt:.1f} samples/s wall (start-up included), "
                  f"{steady:.1f} samples/s steady (after the first {k + 1})", flush=True)
        rows.append(row)
    print("\n| size | sample (ms) | write (ms) | " +
          " | ".join(f"{w} worker{'s' if w > 1 else ''}: wall / steady (samples/s)"
                     for w in workers) + " |")
    print("|---|---|---|" + "---|" * len(workers))
    for r in rows:
        print(f"| {r['size']} | {r['sample_ms']:.1f} | {r['write_ms']:.1f} | " +
              " | ".join(f"{r[f'workers_{w}_samples_per_s']:.1f} / "
                         f"{r[f'workers_{w}_steady_per_s']:.1f}" for w in workers) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "n": args.n, "device": args.device, "rows": rows},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
