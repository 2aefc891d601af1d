"""``pyface3d synth``: the command-line front end of :func:`pyface3d.synth.generate`.

Wire it into ``pyface3d/cli.py`` with ``from .synth.cli import add_parser; add_parser(sub)``.
"""
from __future__ import annotations

import argparse
import json
import sys

from .config import FORMATS, MODALITIES, SynthConfig

__all__ = ["add_parser", "run", "main", "parse_range"]


def parse_range(text: str, name: str):
    """``"A"`` -> (-A, A); ``"LO,HI"`` -> (LO, HI) (degrees)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--{name}: expected A (for -A..A) or LO,HI in degrees, got {text!r}") from None
    if len(vals) == 1:
        if vals[0] < 0:
            raise argparse.ArgumentTypeError(f"--{name}: a single value is a half-range and "
                                             f"must be >= 0, got {text!r}")
        return (-vals[0], vals[0])
    if len(vals) == 2:
        return (vals[0], vals[1])
    raise argparse.ArgumentTypeError(f"--{name}: expected A or LO,HI, got {text!r}")


def _range_type(name: str):
    def conv(text):
        return parse_range(text, name)
    conv.__name__ = f"{name} range"
    return conv


def _pair_type(name: str, cast=float):
    def conv(text):
        parts = str(text).split(",")
        try:
            vals = tuple(cast(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name}: expected LO,HI, got {text!r}") from None
        if len(vals) != 2:
            raise argparse.ArgumentTypeError(f"--{name}: expected LO,HI, got {text!r}")
        return vals
    conv.__name__ = f"{name} pair"
    return conv


def _modalities(text: str):
    mods = [m.strip() for m in str(text).split(",") if m.strip()]
    if mods == ["all"]:
        return MODALITIES
    bad = [m for m in mods if m not in MODALITIES]
    if bad or not mods:
        raise argparse.ArgumentTypeError(f"--modalities: expected 'all' or a comma list of "
                                         f"{','.join(MODALITIES)}, got {text!r}")
    return tuple(mods)


def _positive_int(name: str, minimum: int):
    def conv(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name}: expected an integer, got {text!r}") \
                from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"--{name}: must be >= {minimum}, got {v}")
        return v
    conv.__name__ = name
    return conv


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``synth`` on an ``argparse`` sub-parser collection (sets ``fn=run``)."""
    d = SynthConfig()
    q = subparsers.add_parser(
        "synth", help="generate synthetic faces with labels (RGB, depth, PNCC, normals, "
        "albedo, shading, segmentation, 68 landmarks, 3DMM parameters); resumable",
        description="Parametric synthetic faces from the morphable model's priors "
        "(docs/synth.md). Sample i depends only on (seed, i); rerun to resume.")
    q.add_argument("--n", type=_positive_int("n", 1), required=True, help="number of samples")
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--workers", type=_positive_int("workers", 1), default=1,
                   help="processes (default 1); the output does not depend on it")
    q.add_argument("--seed", type=_positive_int("seed", 0), default=0)
    q.add_argument("--size", type=_positive_int("size", 16), default=d.size,
                   help="image side in pixels (default 120, the 3D network's input)")
    q.add_argument("--morphable", default="ict", help="'ict' (default) or a model .npz path")
    q.add_argument("--backgrounds", default=None,
                   help="folder of images to crop backgrounds from (else procedural only)")
    q.add_argument("--yaw", type=_range_type("yaw"), default=d.yaw,
                   help="A (uniform in -A..A) or LO,HI degrees (default 90); "
                   "write a negative LO as --yaw=-60,0")
    q.add_argument("--pitch", type=_range_type("pitch"), default=d.pitch,
                   help="A or LO,HI degrees (default 30)")
    q.add_argument("--roll", type=_range_type("roll"), default=d.roll,
                   help="A or LO,HI degrees (default 20)")
    q.add_argument("--id-scale", type=float, default=d.id_scale,
                   help="identity spread in prior standard deviations (default 1)")
    q.add_argument("--exp-scale", type=float, default=d.exp_scale,
                   help="expression spread in prior standard deviations (default 1)")
    q.add_argument("--roi-scale", type=_pair_type("roi-scale"), default=d.roi_scale,
                   help="LO,HI image side / landmark ROI side (default 0.9,1.1)")
    q.add_argument("--roi-shift", type=float, default=d.roi_shift,
                   help="ROI centre shift, fraction of its side (default 0.05)")
    q.add_argument("--tone", type=_pair_type("tone"), default=d.tone,
                   help="LO,HI Monk skin tone range 1..10 (default 1,10)")
    q.add_argument("--occlusion", type=float, default=d.occlusion_p,
                   help="probability of occluders (default 0.35)")
    q.add_argument("--blur", type=float, default=d.blur_p,
                   help="probability of Gaussian blur (default 0.25)")
    q.add_argument("--noise", type=float, default=d.noise_p,
                   help="probability of Gaussian noise (default 0.5)")
    q.add_argument("--jpeg", type=float, default=d.jpeg_p,
                   help="probability of JPEG artefacts (default 0.3)")
    q.add_argument("--modalities", type=_modalities, default=MODALITIES,
                   help=f"'all' (default) or a comma list of {','.join(MODALITIES)}")
    q.add_argument("--format", choices=FORMATS, default="png", help="rgb file format")
    q.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.set_defaults(fn=run)
    return q


def config_from_args(args) -> SynthConfig:
    return SynthConfig(
        size=args.size, seed=args.seed, yaw=args.yaw, pitch=args.pitch, roll=args.roll,
        id_scale=args.id_scale, exp_scale=args.exp_scale, roi_scale=args.roi_scale,
        roi_shift=args.roi_shift, tone=args.tone, backgrounds=args.backgrounds,
        occlusion_p=args.occlusion, blur_p=args.blur, noise_p=args.noise, jpeg_p=args.jpeg,
        modalities=args.modalities, format=args.format, device=args.device)


def run(args) -> int:
    """Run ``pyface3d synth`` from parsed arguments; 0 on success, 2 on bad input."""
    from .writer import generate

    try:
        cfg = config_from_args(args)
        res = generate(args.out, args.n, cfg, model=args.morphable, workers=args.workers,
                       progress=not args.no_progress)
    except (ValueError, FileNotFoundError, OSError, RuntimeError, TypeError) as e:
        print(f"pyface3d synth: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2))
    return 0
