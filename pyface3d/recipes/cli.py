"""``pyface3d recipe build|train|eval``: the default model's recipe
(:mod:`pyface3d.recipes.default_model`)."""
from __future__ import annotations

import json

from .._cli_errors import fail

from .default_model import MIXES, REAL_SOURCES, Recipe


def _csv(text, allowed, what):
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        raise ValueError(f"--{what}: unknown {bad}; choose from {','.join(allowed)}")
    return items


def _cmd(args) -> int:
    r = Recipe(args.cache, args.shared)
    try:
        if args.action == "build":
            stages = _csv(args.stages, ("labels", "profile", "synth"), "stages")
            sources = _csv(args.sources, tuple(REAL_SOURCES), "sources")
            out = {}
            if "labels" in stages:
                out["labels"] = r.build_labels(sources, limit=args.limit,
                                               progress=not args.no_progress)
            if "profile" in stages:
                out["profile"] = r.build_profile(sources, views=args.views,
                                                 workers=args.workers,
                                                 progress=not args.no_progress)
            if "synth" in stages:
                out["synth"] = r.build_synth(args.synth_n, workers=args.workers,
                                             progress=not args.no_progress)
            print(json.dumps(out, indent=1, default=str))
        elif args.action == "train":
            if args.mix not in MIXES:
                raise ValueError(f"--mix must be one of {','.join(MIXES)}, got {args.mix!r}")
            res = r.train(args.mix, device=args.device, progress=not args.no_progress,
                          epochs=args.epochs, max_steps=args.max_steps,
                          synth_limit=args.synth_limit, batch_size=args.batch_size,
                          workers=args.workers, total_steps=args.steps,
                          val_every_steps=args.val_every, init=args.init, run=args.run,
                          lr=args.lr)
            print(json.dumps(res, indent=1, default=str))
        elif args.action == "ship":
            print(json.dumps(r.ship(args.run or args.mix, args.which), indent=1))
        else:
            import torch
            mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
            for m in mixes:
                r.run_dir(m)  # a valid run name
            dev = args.device if args.device != "auto" else (
                "cuda" if torch.cuda.is_available() else "cpu")
            print(r.evaluate(mixes, teacher=not args.no_teacher, device=dev,
                             progress=not args.no_progress))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        return fail(f"recipe {args.action}", e)
    return 0


def add_parser(sub) -> None:
    q = sub.add_parser("recipe", help="rebuild the default model: labels, profiling, "
                       "synthetic data, training mixes, aflw-dev comparison")
    q.add_argument("action", choices=["build", "train", "eval", "ship"])
    q.add_argument("--cache", default=None,
                   help="recipe folder (default $PYFACE3D_CACHE/default_model)")
    q.add_argument("--shared", default=None, help="development data (default $PYFACE3D_SHARED)")
    q.add_argument("--stages", default="labels,profile,synth", help="build: labels,profile,synth")
    q.add_argument("--sources", default=",".join(REAL_SOURCES),
                   help=f"build: real sources ({','.join(REAL_SOURCES)})")
    q.add_argument("--limit", type=int, default=None, help="build: at most N images per source")
    q.add_argument("--views", type=int, default=11, help="build: profiled views per image")
    q.add_argument("--synth-n", type=int, default=20000, help="build: synthetic faces")
    q.add_argument("--workers", type=int, default=1, help="processes / data-loader workers")
    q.add_argument("--mix", default="RA+S", help=f"train / ship: one of {','.join(MIXES)}")
    q.add_argument("--epochs", type=int, default=30, help="train: epochs")
    q.add_argument("--batch-size", type=int, default=64, help="train: batch size")
    q.add_argument("--steps", type=int, default=0,
                   help="train: length of the run and its cosine schedule in optimizer steps "
                   "(0: --epochs); trains mixes of different sizes on one budget")
    q.add_argument("--val-every", type=int, default=0,
                   help="train: validate on 300W dev (and keep best.pt) every N steps "
                   "(0: after each epoch)")
    q.add_argument("--lr", type=float, default=2e-3, help="train: peak learning rate")
    q.add_argument("--init", default=None,
                   help="train: start from these weights (a run's name or a checkpoint file)")
    q.add_argument("--run", default=None,
                   help="train / ship: run folder name under runs/ (default: the mix's name)")
    q.add_argument("--max-steps", type=int, default=0,
                   help="train: stop after this many steps in total (0: no limit); rerun resumes")
    q.add_argument("--synth-limit", type=int, default=None,
                   help="train: use the first N synthetic faces")
    q.add_argument("--which", default="best", choices=["best", "final"],
                   help="ship: the run's best.pt (300W dev) or its final model.pt")
    q.add_argument("--mixes", default=",".join(MIXES),
                   help="eval: runs to compare (mixes' or --run names)")
    q.add_argument("--no-teacher", action="store_true", help="eval: skip the teacher row")
    q.add_argument("--device", default="auto", help="train: auto|cpu|cuda; eval: cpu|cuda")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(fn=_cmd)
