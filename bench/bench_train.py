"""Training throughput of a 3D network: images/s of forward + loss + backward +
optimizer step at a given batch size (data loading excluded; it runs in workers).

    python -m bench.bench_train [--model shufflenet3d] [--batch 64] [--loss l2]
                                [--steps 10] [--device cpu|cuda] [--threads N]

Uses the default ICT-FaceKit morphable model (``morphable.resolve("ict")``;
needs it installed or PYFACE3D_SHARED), else ``--morphable PATH``.
"""
import argparse
import json
import time

import torch

from bench.harness import environment


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="shufflenet3d")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--loss", default="l2")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--morphable", default="ict")
    p.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from pyface3d import losses, models
    from pyface3d.morphable import resolve

    dev = torch.device(args.device)
    mm = resolve(args.morphable).to(dev)
    net = models.create(args.model, num_params=mm.num_params, seed=0).to(dev).train()
    loss_fn = losses.make_loss(args.loss, mm)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 3, 120, 120, device=dev)
    y = torch.randn(args.batch, mm.num_params, device=dev) * 0.5
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp)

    def step():
        with torch.autocast(device_type=dev.type, dtype=torch.float16, enabled=args.amp):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(args.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    res = {"model": args.model, "loss": args.loss, "batch": args.batch, "device": str(dev),
           "threads": torch.get_num_threads(), "median_step_s": med,
           "images_per_s": args.batch / med, "environment": environment()}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
