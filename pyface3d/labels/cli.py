"""``pyface3d labels build | fit-map``: pseudo-labels from two teachers (registered on the
project CLI by ``add_parser``; docs/labels.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["add_parser", "main"]


def _shared(args) -> str:
    shared = args.shared or os.environ.get("PYFACE3D_SHARED")
    if not shared or not os.path.isdir(shared):
        raise ValueError(f"argument --shared: {shared!r} is not a folder (the shared data "
                         "folder with data/300w, data/faces and assets/; or set "
                         "$PYFACE3D_SHARED)")
    return shared


def _cmd_build(args) -> int:
    from .build import BUILD_SOURCES, build
    from .fit import FitConfig

    try:
        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
        if not sources:
            raise ValueError(f"argument --sources: expected some of {','.join(BUILD_SOURCES)}")
        rep = build(_shared(args), args.out, sources, limit=args.limit, quantile=args.quantile,
                    fit=FitConfig(prior_id=args.prior, prior_exp=args.prior,
                                  jaw_weight=args.jaw_weight),
                    morphable=args.model, mp_map=args.map, evaluate=not args.no_eval,
                    progress=not args.no_progress)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        from .._cli_errors import fail
        return fail("labels build", e)
    print(json.dumps(rep, indent=1))
    return 0


def _cmd_fit_map(args) -> int:
    from .build import default_out, fit_default_map

    try:
        if args.k < 1:
            raise ValueError(f"argument --k must be >= 1, got {args.k}")
        m = fit_default_map(_shared(args), os.path.abspath(args.out or default_out()),
                            args.map, k=args.k, progress=not args.no_progress)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        print(f"pyface3d labels fit-map: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(m.info, indent=1))
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``labels`` (sub-commands ``build``, ``fit-map``) on an argparse sub-parsers
    object; the leaf parsers set ``fn`` (call ``args.fn(args)``, returns the exit code)."""
    p = subparsers.add_parser("labels", help="pseudo-labels from two teachers (MediaPipe, mb05)",
                              description="Pseudo-labels for unlabelled faces (docs/labels.md).")
    sub = p.add_subparsers(dest="labels_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--shared", default=None,
                        help="shared data folder (default $PYFACE3D_SHARED)")
    common.add_argument("--out", default=None, help="output folder (default "
                        "$PYFACE3D_CACHE/default_data/labels or ~/.cache/pyface3d/...)")
    common.add_argument("--map", default=None,
                        help="MediaPipe->68 map JSON (default: the package's mp68_map.json)")
    common.add_argument("--no-progress", action="store_true", help="no progress bars")
    q = sub.add_parser(
        "build", parents=[common], help="teachers -> fusion -> morphable fit -> labels JSON",
        description="Run MediaPipe FaceMesh (in $PYFACE3D_MEDIAPIPE_PYTHON's environment) and "
        "the mb05 teacher, calibrate the fusion on 300W train, evaluate on 300W dev, fuse, "
        "reject, fit the morphable model and write ImageLabelsDataset JSON per source. "
        "Resumable: rerun the same command to continue.")
    q.add_argument("--sources", default="300w_train,lfw,utkface",
                   help="comma-separated: 300w_train, lfw, utkface (default all)")
    q.add_argument("--limit", type=int, default=None, help="first N images per source")
    q.add_argument("--quantile", type=float, default=0.95,
                   help="rejection threshold = this quantile of the teachers' agreement on "
                   "300W train (0.95)")
    q.add_argument("--prior", type=float, default=1.0,
                   help="fit prior on whitened shape/expression (crop px^2; 1)")
    q.add_argument("--jaw-weight", type=float, default=0.5,
                   help="fit weight of the 17 jaw (silhouette) points (0.5)")
    q.add_argument("--model", default="ict", help="morphable model ('ict' or a .npz)")
    q.add_argument("--no-eval", action="store_true", help="skip the 300W dev evaluation")
    q.set_defaults(fn=_cmd_build)
    r = sub.add_parser(
        "fit-map", parents=[common], help="fit the MediaPipe 468 -> iBUG 68 map on 300W train",
        description="Fit the sparse convex MediaPipe->68 map on the 300W training faces and "
        "write it (default: over the package's mp68_map.json).")
    r.add_argument("--k", type=int, default=8, help="candidate mesh vertices per point (8)")
    r.set_defaults(fn=_cmd_fit_map)
    return p

