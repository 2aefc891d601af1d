"""``pyface3d augment profile``: face profiling of a labelled image folder (registered on
the project CLI by ``add_parser``)."""
from __future__ import annotations

import argparse
import json

__all__ = ["add_parser", "main"]


def _cmd_profile(args) -> int:
    from .batch import profile_folder
    from .profile import ProfileConfig

    try:
        if args.threads < 1:
            raise ValueError(f"argument --threads must be >= 1, got {args.threads}")
        import torch
        torch.set_num_threads(args.threads)
        res = profile_folder(args.images, args.out, args.labels, views=args.views,
                             yaw_step=args.yaw_step, mode=args.mode, max_yaw=args.max_yaw,
                             yaw_deltas=args.yaw_deltas, workers=args.workers, ext=args.ext,
                             model=args.model,
                             config=ProfileConfig(pivot=args.pivot, face_cut=args.face_cut),
                             progress=not args.no_progress)
    except (OSError, ValueError, KeyError, TypeError) as e:
        from .._cli_errors import fail
        return fail("augment profile", e)
    print(json.dumps(res, indent=2))
    return 0


def _deltas(text: str):
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated degrees, got {text!r}")
    if not vals:
        raise argparse.ArgumentTypeError("expected at least one yaw change")
    return vals


def _face_cut(text: str):
    if text.strip().lower() == "none":
        return None
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FRONT,BELOW or none, got {text!r}")
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected FRONT,BELOW or none, got {text!r}")
    return vals


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``augment`` (with sub-command ``profile``) on an argparse sub-parsers object;
    the leaf parser sets ``fn`` (call ``args.fn(args)``, returns the exit code)."""
    p = subparsers.add_parser("augment", help="data augmentation (3D face profiling)",
                              description="Data augmentation.")
    sub = p.add_subparsers(dest="augment_command", required=True)
    q = sub.add_parser(
        "profile", help="turn the faces of labelled images in yaw (300W-LP style face profiling)",
        description="Fit the 3D morphable model to each image's 68 landmarks, texture it with "
        "the image, extend it with anchors over hair and background, turn it in yaw and "
        "re-render; writes images, labels (JSON + CSV readable by ImageLabelsDataset) and a "
        "manifest. Resumable: rerun the same command to continue. See docs/augment.md.")
    q.add_argument("--images", required=True, help="image folder (searched recursively for .pts)")
    q.add_argument("--labels", default=None,
                   help="labels .json/.csv (ImageLabelsDataset formats; default: 300W .pts "
                   "beside each image)")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--views", type=int, default=11, help="views per image incl. the input pose (11)")
    q.add_argument("--yaw-step", type=float, default=15.0, help="degrees between views (15)")
    q.add_argument("--mode", default="outward", choices=["outward", "symmetric"],
                   help="view order: outward (the side the face is turned first, then the other) "
                   "or symmetric (by |change|)")
    q.add_argument("--max-yaw", type=float, default=90.0, help="largest |yaw| of a view (90)")
    q.add_argument("--yaw-deltas", type=_deltas, default=None,
                   help="explicit yaw changes, e.g. 0,15,30 (overrides views/step/mode)")
    q.add_argument("--pivot", default="centroid", choices=["centroid", "origin", "landmarks"],
                   help="point the head turns about (centroid: mean of the fitted mesh)")
    q.add_argument("--face-cut", type=_face_cut, default=(0.06, 0.1),
                   help="textured front of the model: FRONT,BELOW in landmark widths (default "
                   "0.06,0.1), or none for the whole mesh (ears, neck)")
    q.add_argument("--model", default="ict", help="morphable model: 'ict' (default) or a .npz path")
    q.add_argument("--ext", default="jpg", choices=["jpg", "png"], help="image format (jpg, quality 95)")
    q.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    q.add_argument("--threads", type=int, default=1,
                   help="torch threads of this process (default 1; use --workers to scale)")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(fn=_cmd_profile)
    return p
