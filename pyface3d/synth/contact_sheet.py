"""A contact sheet of synthetic samples x modalities (one PNG), for a quick look.

    python -m pyface3d.synth.contact_sheet --out docs/images/synth_samples.png
        [--indices 0,1,2,3] [--size 120] [--seed 0] [--morphable ict] [--tile 96]

Columns: final RGB, RGB with the 68 landmarks (green visible, red hidden), depth (near =
bright), PNCC, normals, albedo, shading, segmentation (colours of ``SEG_COLORS``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import cv2
import numpy as np

from .config import SynthConfig
from .regions import SEG_COLORS
from .synthesizer import FaceSynthesizer, SynthSample

__all__ = ["sample_tiles", "contact_sheet", "main"]

COLUMNS = ("rgb", "landmarks", "depth", "pncc", "normals", "albedo", "shading", "seg")


def sample_tiles(s: SynthSample) -> list:
    """The sheet's tiles (RGB uint8, size x size) of one sample, in :data:`COLUMNS` order."""
    m = s.mask
    lm = s.rgb.copy()
    scale = max(1, s.rgb.shape[0] // 120)
    for (x, y, _), v in zip(s.landmarks, s.visible):
        cv2.circle(lm, (int(round(x)), int(round(y))), scale, (40, 255, 40) if v else
                   (255, 40, 40), -1)
    depth = np.zeros(m.shape, np.uint8)
    if m.any():
        d = s.depth[m]
        depth[m] = np.rint(40 + 215 * (d - d.min()) / max(float(np.ptp(d)), 1e-6))
    u8 = lambda a: np.rint(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return [s.rgb, lm, np.repeat(depth[..., None], 3, 2), u8(s.pncc),
            u8((s.normals + 1) / 2) * m[..., None], u8(s.albedo), u8(s.shading),
            SEG_COLORS[s.seg]]


def contact_sheet(synth: FaceSynthesizer, indices: Sequence[int], tile: int = 96) -> np.ndarray:
    """(rows x tile + header, 8 x tile, 3) RGB uint8 sheet of samples ``indices``."""
    header = np.full((18, tile * len(COLUMNS), 3), 255, np.uint8)
    for k, name in enumerate(COLUMNS):
        cv2.putText(header, name, (k * tile + 4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for i in indices:
        tiles = sample_tiles(synth.sample(int(i)))
        interp = cv2.INTER_AREA if tiles[0].shape[0] > tile else cv2.INTER_NEAREST
        rows.append(np.concatenate([cv2.resize(t, (tile, tile), interpolation=interp)
                                    for t in tiles], 1))
    return np.concatenate(rows, 0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="PNG path")
    p.add_argument("--indices", default="0,1,2,3", help="comma list of sample indices")
    p.add_argument("--size", type=int, default=120)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tile", type=int, default=96, help="tile side in the sheet (px)")
    p.add_argument("--morphable", default="ict")
    args = p.parse_args(argv)
    try:
        idx = [int(v) for v in args.indices.split(",")]
    except ValueError:
        p.error(f"--indices: expected a comma list of integers, got {args.indices!r}")
    if args.tile < 16:
        p.error(f"--tile: must be >= 16, got {args.tile}")
    synth = FaceSynthesizer(args.morphable, SynthConfig(size=args.size, seed=args.seed))
    sheet = contact_sheet(synth, idx, args.tile)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if not cv2.imwrite(args.out, np.ascontiguousarray(sheet[..., ::-1]),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f"contact_sheet: cannot write {args.out}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
