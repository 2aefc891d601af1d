"""``pyface3d align``, ``pyface3d video`` and ``pyface3d bench``."""
from __future__ import annotations

import json
import os
import sys
import warnings

OUTPUTS = ("landmarks", "pose", "depth", "pncc", "mesh", "obj", "ply", "json")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _model_args(q, backends=True):
    g = q.add_argument_group("model")
    g.add_argument("--weights", default=None,
                   help="model.pt from `pyface3d train` (default: the shipped default model)")
    g.add_argument("--morphable", default="ict", help="morphable model of --weights: 'ict' "
                   "(default) or a .npz path")
    g.add_argument("--teacher", default=None, help="development only: the 3DDFA_V2 mb05 "
                   "teacher folder instead of --weights (landmarks and pose; no mesh)")
    g.add_argument("--backend", default="torch",
                   choices=["torch", "compile", "onnxruntime", "tensorrt"])
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument("--fp16", action="store_true", help="half precision (CUDA backends)")
    g.add_argument("--detector", default="auto",
                   help="auto (YuNet if found, else Haar), yunet, haar, or a .onnx/.xml path")
    g.add_argument("--threads", type=int, default=None, help="torch / OpenCV CPU threads")


def _build(args, model_name=None):
    import cv2
    import torch

    from .reconstructor import FaceReconstructor, MorphableHead

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    if args.teacher and args.weights:
        raise ValueError("pass --weights or --teacher, not both")
    ort_opts = {"threads": args.threads} if (args.backend == "onnxruntime"
                                              and args.threads is not None) else {}
    if args.teacher:
        return FaceReconstructor.from_teacher(args.teacher, backend=args.backend,
                                              device=args.device, detector=args.detector,
                                              backend_options=ort_opts)
    if model_name:
        from .. import models
        from ..morphable import resolve
        from .backends import make_backend
        warnings.warn(f"--model {model_name}: randomly initialised, UNTRAINED weights: the "
                      "results are meaningless; use this for timing only", stacklevel=2)
        mm = resolve(args.morphable)
        net = models.create(model_name, num_params=mm.num_params, seed=0)
        opts = {"morphable": mm} if args.backend in ("onnxruntime", "tensorrt") else {}
        if args.backend == "onnxruntime" and args.threads is not None:
            opts["threads"] = args.threads
        return FaceReconstructor(make_backend(args.backend, net, device=args.device,
                                              fp16=args.fp16, **opts), MorphableHead(mm),
                                 detector=args.detector)
    return FaceReconstructor.from_weights(args.weights, args.morphable, backend=args.backend,
                                          device=args.device, fp16=args.fp16,
                                          detector=args.detector, backend_options=ort_opts)


def _fail(cmd, e) -> int:
    from .._cli_errors import fail
    return fail(cmd, e)


def _cmd_align(args) -> int:
    import cv2
    import numpy as np

    from ..data.landmarks import write_pts
    from ..render import write_obj, write_ply
    from .draw import colorize_depth, draw_frame

    outs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    bad = [o for o in outs if o not in OUTPUTS]
    if bad or not outs:
        return _fail("align", ValueError(f"--outputs: unknown {bad}; choose from "
                                         f"{','.join(OUTPUTS)}"))
    files = []
    for p in args.images:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p)
                            if f.lower().endswith(IMAGE_EXTS))
        else:
            files.append(p)
    missing = [p for p in files if not os.path.isfile(p)]
    if missing:
        return _fail("align", FileNotFoundError(f"no such file(s): {missing}"))
    if not files:
        return _fail("align", FileNotFoundError("no images given (or the folders hold no "
                                                f"{'/'.join(IMAGE_EXTS)} files)"))
    try:
        if args.boxes:
            try:
                boxes = [[float(v) for v in b.split(",")] for b in args.boxes.split(";")]
                if any(len(b) != 4 for b in boxes):
                    raise ValueError
            except ValueError:
                raise ValueError(f"--boxes: expected 'x1,y1,x2,y2[;x1,y1,x2,y2...]', got "
                                 f"{args.boxes!r}") from None
            from .detect import BoxesDetector
            args.detector = BoxesDetector(boxes)
        rec = _build(args)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        return _fail("align", e)
    os.makedirs(args.out, exist_ok=True)
    dense = any(o in outs for o in ("depth", "pncc", "mesh", "obj", "ply"))
    if dense and not rec.head.dense:
        return _fail("align", ValueError("depth/pncc/mesh/obj/ply need a morphable model; "
                                         "the teacher gives landmarks and pose only"))
    failed = 0
    from tqdm.auto import tqdm
    for path in tqdm(files, desc="align", unit="img", disable=args.no_progress):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            print(f"pyface3d align: {path}: not an image OpenCV can read (supported: "
                  f"{', '.join(IMAGE_EXTS)}); skipped", file=sys.stderr)
            failed += 1
            continue
        stem = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0])
        res = rec(img, dense=dense)
        if not res.faces:
            print(f"pyface3d align: {path}: no face found", file=sys.stderr)
        if "landmarks" in outs:
            cv2.imwrite(stem + "_landmarks.png", draw_frame(img, res, ("box", "landmarks")))
            for k, f in enumerate(res.faces):
                write_pts(f"{stem}_face{k}.pts", f.landmarks[:, :2] + 1.0)
        if "pose" in outs:
            cv2.imwrite(stem + "_pose.png", draw_frame(img, res, ("landmarks", "axes")))
        if "depth" in outs:
            d, m = rec.render(res.faces, img.shape[:2], "depth") if res.faces else (
                np.zeros(img.shape[:2] + (1,), np.float32), np.zeros(img.shape[:2], bool))
            cv2.imwrite(stem + "_depth.png", colorize_depth(d, m))
        if "pncc" in outs:
            c, m = rec.render(res.faces, img.shape[:2], "pncc") if res.faces else (
                np.zeros(img.shape[:2] + (3,), np.float32), np.zeros(img.shape[:2], bool))
            cv2.imwrite(stem + "_pncc.png", (np.clip(c[..., ::-1], 0, 1) * 255).astype(np.uint8))
        if "mesh" in outs:
            cv2.imwrite(stem + "_mesh.png", draw_frame(img, res, ("mesh",), rec))
        for k, f in enumerate(res.faces):
            if "obj" in outs or "ply" in outs:
                v, tris = rec.mesh(f)
                # colours sampled from the image at the projected vertices
                xy = np.clip(np.round(v[:, :2]), 0, [img.shape[1] - 1, img.shape[0] - 1])
                col = img[xy[:, 1].astype(int), xy[:, 0].astype(int)][:, ::-1] / 255.0
                if "obj" in outs:
                    write_obj(f"{stem}_face{k}.obj", v, tris, colors=col)
                if "ply" in outs:
                    write_ply(f"{stem}_face{k}.ply", v, tris, colors=col)
        if "json" in outs:
            d = res.to_dict()
            d["image"] = path
            with open(stem + ".json", "w", encoding="utf-8") as fh:
                json.dump(d, fh, indent=1)
    print(f"{len(files) - failed} image(s) -> {args.out}" + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0


def _cmd_video(args) -> int:
    from .video import VideoRunner

    overlays = [o.strip() for o in args.overlays.split(",") if o.strip()]
    try:
        rec = _build(args)
        src = int(args.input) if args.input.isdigit() else args.input
        runner = VideoRunner(rec, overlays=overlays, out=args.out, show=args.show,
                             keep_results=bool(args.json), redetect_every=args.redetect_every,
                             min_confidence=args.min_confidence, max_faces=args.max_faces,
                             smooth=not args.no_smooth)
        st = runner.run(src, max_frames=args.max_frames)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        return _fail("video", e)
    d = st.to_dict()
    print(f"{d['frames_processed']} frames in {d['seconds']:.2f} s = {d['fps']:.1f} fps; "
          f"dropped {d['frames_dropped']}, corrupt {d['bad_frames']}, without a face "
          f"{d['frames_without_face']}")
    print("per-stage ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in d["stage_ms"].items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"stats": d, "frames": st.results}, fh)
        print(f"results: {args.json}")
    if args.out:
        print(f"video: {args.out}")
    return 0


def _cmd_bench(args) -> int:
    import platform

    import torch

    from .benchmark import bench_network, bench_per_face, bench_pipeline, bench_render

    try:
        rec = _build(args, model_name=None if (args.weights or args.teacher) else args.model)
        batches = [int(b) for b in args.batch.split(",")]
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        suites = {x.strip() for x in args.suites.split(",") if x.strip()}
        if not suites or suites - {"network", "perface", "pipeline", "render"}:
            raise ValueError(f"--suites: expected a subset of network,perface,pipeline,render, got "
                             f"{args.suites!r}")
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
        return _fail("bench", e)
    report = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine(),
                          "threads": torch.get_num_threads()}}
    net = getattr(rec.backend, "net", None)
    if net is not None and "network" in suites:
        mm = getattr(rec.head, "mm", None)
        report["network"] = bench_network(net, backends, batches, args.device, args.min_time,
                                          morphable=mm if mm is not None else args.morphable)
        print(f"network: {report['network']['params'] / 1e6:.2f} M params, "
              f"{report['network']['macs'] / 1e9:.3f} GMACs")
        for be, r in report["network"]["backends"].items():
            print(f"  {be:12s} " + "  ".join(f"b{b}: {v['median_s'] * 1e3:.2f} ms "
                                             f"({v['images_per_s']:.0f} img/s)"
                                             for b, v in r.items()))
    if "perface" in suites:
        m = bench_per_face(rec, args.min_time)
        report["per_face"] = m
        print(f"per-face path (crop + network + reconstruction, backend {args.backend}): "
              f"{m['median_s'] * 1e3:.2f} ms (IQR {m['iqr_s'] * 1e3:.2f})")
    if "pipeline" in suites:
        p = bench_pipeline(rec, args.video, args.frames, args.redetect_every,
                           args.min_confidence)
        report["pipeline"] = p
        print(f"pipeline (640x480, tracking, redetect every {args.redetect_every}): "
              f"{p['fps']:.1f} fps end to end; per-face path {p['per_face_ms']:.2f} ms; "
              + ", ".join(f"{k} {v:.2f}" for k, v in p["stage_ms"].items()))
    if "render" in suites and rec.head.dense:
        r = bench_render(rec, min_time=args.min_time)
        report["render_1080p"] = r
        for fs, v in r.items():
            print(f"render one face (box {fs} px tall, {v['face_pixels']} px covered) into "
                  "1080p: " + ", ".join(f"{k} {v[k]['median_s'] * 1e3:.2f} ms"
                                       for k in ("depth", "pncc")))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
        print(f"report: {args.json}")
    return 0


def add_parser(sub) -> None:
    """Register ``align``, ``video`` and ``bench`` on an argparse subparsers object."""
    q = sub.add_parser("align", help="landmarks, pose, depth, PNCC and meshes of the faces in "
                       "images")
    q.add_argument("images", nargs="+", help="image files or folders")
    q.add_argument("--out", default="align_out", help="output folder (default align_out)")
    q.add_argument("--outputs", default="landmarks,pose,json",
                   help=f"comma-separated subset of {','.join(OUTPUTS)}")
    q.add_argument("--boxes", default=None,
                   help="face boxes to use instead of a detector, for every image: "
                   "'x1,y1,x2,y2[;x1,y1,x2,y2...]' (pixels)")
    q.add_argument("--no-progress", action="store_true")
    _model_args(q)
    q.set_defaults(fn=_cmd_align)

    q = sub.add_parser("video", help="track faces through a video file, webcam or stream")
    q.add_argument("input", help="video file, webcam index (0) or stream URL")
    q.add_argument("--out", default=None, help="annotated output video (.mp4 / .avi)")
    q.add_argument("--show", action="store_true", help="show a window (needs OpenCV with GUI)")
    q.add_argument("--overlays", default="landmarks,axes",
                   help="comma-separated: landmarks, box, axes, depth, pncc, mesh")
    q.add_argument("--json", default=None, help="write per-frame results to this JSON file")
    q.add_argument("--redetect-every", type=int, default=30)
    q.add_argument("--min-confidence", type=float, default=0.5)
    q.add_argument("--max-faces", type=int, default=4)
    q.add_argument("--max-frames", type=int, default=None)
    q.add_argument("--no-smooth", action="store_true", help="no One-Euro smoothing")
    _model_args(q)
    q.set_defaults(fn=_cmd_video)

    q = sub.add_parser("bench", help="network latency per backend, pipeline fps and "
                       "per-stage latency, 1080p rendering")
    q.add_argument("--suites", default="network,perface,pipeline,render",
                   help="comma-separated: network, perface, pipeline, render")
    q.add_argument("--model", default="shufflenet3d",
                   help="registry network timed when neither --weights nor --teacher is given "
                   "(untrained: timing only)")
    q.add_argument("--backends", default="torch", help="comma-separated backends to time")
    q.add_argument("--batch", default="1,8,64")
    q.add_argument("--video", default=None, help="clip to run (default: one is built)")
    q.add_argument("--frames", type=int, default=300)
    q.add_argument("--redetect-every", type=int, default=30)
    q.add_argument("--min-confidence", type=float, default=0.5)
    q.add_argument("--min-time", type=float, default=0.5, help="seconds per timing")
    q.add_argument("--json", default=None, help="write the report here")
    _model_args(q)
    q.set_defaults(fn=_cmd_bench)
