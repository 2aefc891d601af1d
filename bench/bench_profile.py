"""Face profiling speed (views/s) on the CPU, with its floor measured in the same run.

    PYTHONPATH=. PYFACE3D_SHARED=../shared python -m bench.bench_profile [--size 384]
        [--views 11] [--repeat 5] [--threads 1] [--image IMG --pts PTS] [--json FILE]

Input: by default a synthetic face (the ICT model at a random pose and shape, coloured by
its normals, over a noise background) of ``size x size`` pixels, so no dataset is needed;
``--image``/``--pts`` time a real image with its 300W landmarks instead.

Reported (medians over ``--repeat`` runs, after one warm-up):

* ``profile``: one image to ``--views`` views (fit + meshing + views), s/image and views/s;
* ``fit``: :meth:`FaceProfiler.fit` alone;
* ``per view``: (time of all views - time of the 0 view alone) / (views - 1);
* floor (baseline, same process): one rasterization of the face mesh into the frame plus
  one ``cv2.remap`` of the image (the least any view costs); ``ratio`` = per view / floor.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import cv2
import numpy as np
import torch


def synthetic_input(prof, size: int, seed: int = 0):
    """(image, landmarks) of the model at a random pose/shape, shaded by its normals."""
    from pyface3d import ops
    from pyface3d.data import crop_to_image
    from pyface3d.morphable import pose_from_euler
    from pyface3d.render import vertex_normals

    m = prof.model
    g = torch.Generator().manual_seed(seed)
    t = torch.tensor([61.0, 60.0, float(m.param_mean[11])], dtype=torch.float64)
    pose = pose_from_euler(torch.tensor([20.0], dtype=torch.float64), 5.0, -3.0,
                           float(m.param_mean[0]), t, degrees=True)[0]
    c = 0.5 * torch.randn(m.I + m.E, generator=g, dtype=torch.float64)
    p = torch.cat([pose.reshape(12), c])
    roi = np.array([0.0, 0.0, size, size])
    v = crop_to_image(m.reconstruct(p[None]).numpy(), roi[None])[0]
    tri = m.triangles
    n = vertex_normals(torch.from_numpy(v), tri).abs()
    fi, bary, _ = ops.rasterize(torch.from_numpy(v)[None].float(), tri, size, size)
    face = ops.interpolate((n * 200 + 30)[None].float(), fi, bary, tri)[0].numpy()
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.uniform(20, 230, (size, size, 3)).astype(np.float32), (0, 0), 4)
    img = np.where((fi[0] >= 0).numpy()[..., None], face, bg).clip(0, 255).astype(np.uint8)
    return img, v[m.landmarks68.numpy(), :2]


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--views", type=int, default=11)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--image", default=None)
    ap.add_argument("--pts", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from pyface3d import ops
    from pyface3d.augment import FaceProfiler
    from pyface3d.data import read_pts

    prof = FaceProfiler("ict")
    if args.image:
        img = cv2.imread(args.image, cv2.IMREAD_COLOR)
        if img is None or not args.pts:
            raise SystemExit("--image needs a readable image and --pts its 68 landmarks")
        lm = read_pts(args.pts) - 1.0
    else:
        img, lm = synthetic_input(prof, args.size)
    H, W = img.shape[:2]
    deltas = None
    t_all = _median_time(lambda: prof.profile(img, lm, views=args.views), args.repeat)
    yaw0 = prof.profile(img, lm, yaw_deltas=[0.0])[0].yaw
    from pyface3d.augment import yaw_schedule
    deltas = yaw_schedule(yaw0, args.views)
    t_zero = _median_time(lambda: prof.profile(img, lm, yaw_deltas=[0.0]), args.repeat)
    t_fit = _median_time(lambda: prof.fit(lm), args.repeat)
    p, roi = prof.fit(lm)
    v = torch.from_numpy(prof.mesh.extend(prof.vertices(p, roi)))[None].float()
    tri = torch.from_numpy(prof.mesh.triangles)
    mx, my = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))

    def floor():
        ops.rasterize(v, tri, H, W)
        cv2.remap(img, mx, my, cv2.INTER_LINEAR)

    t_floor = _median_time(floor, args.repeat)
    per_view = (t_all - t_zero) / max(len(deltas) - 1, 1)
    res = {"image": args.image or f"synthetic {H}x{W}", "views": len(deltas), "threads": args.threads,
           "profile_s_per_image": t_all, "views_per_s": len(deltas) / t_all,
           "fit_s": t_fit, "per_view_s": per_view, "floor_s": t_floor,
           "ratio_per_view_to_floor": per_view / t_floor,
           "machine": platform.processor() or platform.machine(), "torch": torch.__version__}
    print(f"{res['image']}: {len(deltas)} views in {t_all * 1e3:.0f} ms/image "
          f"({res['views_per_s']:.1f} views/s); fit {t_fit * 1e3:.1f} ms; per view "
          f"{per_view * 1e3:.1f} ms vs floor (raster + remap) {t_floor * 1e3:.1f} ms "
          f"-> {res['ratio_per_view_to_floor']:.1f}x the floor")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return res


if __name__ == "__main__":
    main()
