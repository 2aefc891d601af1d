"""The ``pyface3d`` command (also ``python -m pyface3d``)."""
import argparse
import json
import sys


def _cmd_info(args) -> int:
    from .info import build_info, format_info

    info = build_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _cmd_demo(args) -> int:
    from .demo import run_demo
    from .pipeline.reconstructor import default_weights_path

    run_demo(args.out)
    if args.weights or args.teacher or default_weights_path():
        from .demo_pipeline import run_pipeline_demo
        try:
            run_pipeline_demo(args.out, weights=args.weights, teacher=args.teacher)
        except (OSError, ValueError, RuntimeError, ImportError) as e:
            print(f"pyface3d demo: error: {e}", file=sys.stderr)
            return 2
    else:
        print("pipeline demo skipped: no trained default weights ship with this version yet "
              "(pass --weights model.pt from `pyface3d train`, or --teacher DIR)")
    return 0


def _cmd_train(args) -> int:
    from .train import load_config, train

    cfg = load_config(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    result = train(cfg, device=args.device, progress=not args.no_progress)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_eval(args) -> int:
    from .eval import evaluate_aflw, evaluate_aflw2000

    fn = evaluate_aflw if args.what == "aflw" else evaluate_aflw2000
    try:
        res = fn(args.root, weights=args.weights, morphable=args.morphable,
                 teacher=args.teacher, out=args.out, batch_size=args.batch_size,
                 device=args.device, progress=not args.no_progress,
                 num_workers=args.num_workers, optimize=not args.no_optimize)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        from ._cli_errors import fail
        return fail(f"eval {args.what}", e)
    print(res.table("text"))
    s = res.summary()
    print(f"{s['num_images']} images in {res.seconds:.1f} s; counts {s['counts']}")
    for k, v in res.info.get("files", {}).items():
        print(f"{k}: {v}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pyface3d", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("info", help="build configuration, CUDA, kernels and assets found")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(fn=_cmd_info)
    q = sub.add_parser("demo", help="the kernels on a mesh (heatmaps, depth, PNCC) and the face "
                       "pipeline on scikit-image's astronaut photo and a clip made from it")
    q.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    q.add_argument("--weights", default=None, help="model.pt (default: the shipped weights)")
    q.add_argument("--teacher", default=None, help="development: the 3DDFA_V2 mb05 folder")
    q.set_defaults(fn=_cmd_demo)
    q = sub.add_parser("train", help="train a network (interruptible; rerun to resume)")
    q.add_argument("what", choices=["3d"], help="3d: the 3DMM-parameter network")
    q.add_argument("--config", required=True, help="TOML or JSON training config")
    q.add_argument("--out-dir", default=None, help="override the config's out_dir")
    q.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(fn=_cmd_train)
    q = sub.add_parser("eval", help="benchmark a network: NME per yaw bucket (table 6.1), "
                       "JSON, Markdown and a CED plot")
    q.add_argument("what", choices=["aflw", "aflw2000"],
                   help="aflw: the aflw-dev layout (images/ + labels.npz, 21 points); "
                   "aflw2000: AFLW2000-3D (*.jpg + .mat, 68 points)")
    q.add_argument("--root", required=True, help="dataset folder")
    g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--weights", default=None, help="model.pt written by `pyface3d train`")
    g.add_argument("--teacher", default=None,
                   help="3DDFA_V2 mb05 teacher folder (mb05_120x120.pth, param_*_v2.txt, bases)")
    q.add_argument("--morphable", default="ict",
                   help="morphable model of --weights: 'ict' (default) or a .npz path")
    q.add_argument("--out", default="eval_out",
                   help="folder for <what>_nme.md, <what>_nme.json, <what>_ced.png "
                   "(default: eval_out)")
    q.add_argument("--batch-size", type=int, default=128)
    q.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    q.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (default 0)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--no-optimize", action="store_true",
                   help="run the network as a plain module (no trace + freeze)")
    q.set_defaults(fn=_cmd_eval)
    from .augment.cli import add_parser as _add_augment
    from .deploy.cli import add_parser as _add_export
    from .pipeline.cli import add_parser as _add_pipeline
    from .labels.cli import add_parser as _add_labels
    from .recipes.cli import add_parser as _add_recipe
    from .synth.cli import add_parser as _add_synth
    _add_pipeline(sub)
    _add_export(sub)
    _add_augment(sub)
    _add_synth(sub)
    _add_labels(sub)
    _add_recipe(sub)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
