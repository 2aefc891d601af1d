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

    run_demo(args.out)
    return 0


def _cmd_train(args) -> int:
    from .train import load_config, train

    cfg = load_config(args.config)
    if args.out_dir:
        cfg.out_dir = args.out_dir
    result = train(cfg, device=args.device, progress=not args.no_progress)
    print(json.dumps(result, indent=2))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pyface3d", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("info", help="build configuration, CUDA, kernels and assets found")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(fn=_cmd_info)
    q = sub.add_parser("demo", help="render heatmaps, depth and PNCC of a mesh to PNG files")
    q.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    q.set_defaults(fn=_cmd_demo)
    q = sub.add_parser("train", help="train a network (interruptible; rerun to resume)")
    q.add_argument("what", choices=["3d"], help="3d: the 3DMM-parameter network")
    q.add_argument("--config", required=True, help="TOML or JSON training config")
    q.add_argument("--out-dir", default=None, help="override the config's out_dir")
    q.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(fn=_cmd_train)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
