"""The pipeline demo (part of ``pyface3d demo`` / ``make demo``): the face pipeline on a
public-domain photograph that a dependency ships (scikit-image's ``astronaut``, NASA, public
domain) and on a short clip made from it, writing annotated images, depth, PNCC, a mesh (OBJ
and PLY) and JSON to the output folder and printing per-stage timings."""
from __future__ import annotations

import json
import math
import os
import time
from typing import Dict, Optional

import cv2
import numpy as np


def astronaut_bgr() -> np.ndarray:
    """scikit-image's ``astronaut`` (512x512, public domain) as BGR uint8."""
    try:
        from skimage import data
    except ImportError as e:
        raise ImportError("the pipeline demo uses scikit-image's public-domain 'astronaut' "
                          "image: pip install scikit-image (requirements.txt pins it)") from e
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def clip_frames(image: np.ndarray, n: int = 60, size=(640, 480)):
    """``n`` frames of ``image`` panned, zoomed and turned slightly (a stand-in camera)."""
    W, H = size
    h, w = image.shape[:2]
    for i in range(n):
        a = 6.0 * math.sin(i / 9.0)
        s = 0.85 + 0.1 * math.sin(i / 13.0)
        M = cv2.getRotationMatrix2D((w / 2, h / 2), a, s)
        M[0, 2] += (W - w) / 2 + 40 * math.sin(i / 11.0)
        M[1, 2] += (H - h) / 2 + 20 * math.cos(i / 7.0)
        yield cv2.warpAffine(image, M, (W, H), borderMode=cv2.BORDER_REFLECT)


def run_pipeline_demo(out_dir: str = "demo_out", weights: Optional[str] = None,
                      teacher: Optional[str] = None, frames: int = 60) -> Dict[str, float]:
    from .pipeline import FaceReconstructor
    from .pipeline.draw import colorize_depth, draw_frame
    from .pipeline.video import VideoRunner
    from .render import write_obj, write_ply

    os.makedirs(out_dir, exist_ok=True)
    rec = (FaceReconstructor.from_teacher(teacher) if teacher else
           FaceReconstructor.from_weights(weights))
    img = astronaut_bgr()
    rec(img)  # warm-up (tracing, thread pools)
    t0 = time.perf_counter()
    res = rec(img, dense=rec.head.dense)
    total = (time.perf_counter() - t0) * 1e3
    if not res.faces:
        raise RuntimeError("no face found in the astronaut image")
    stem = os.path.join(out_dir, "astronaut")
    cv2.imwrite(stem + "_landmarks.png", draw_frame(img, res, ("box", "landmarks", "axes")))
    written = [stem + "_landmarks.png"]
    if rec.head.dense:
        d, m = rec.render(res.faces, img.shape[:2], "depth")
        cv2.imwrite(stem + "_depth.png", colorize_depth(d, m))
        c, m = rec.render(res.faces, img.shape[:2], "pncc")
        cv2.imwrite(stem + "_pncc.png", (np.clip(c[..., ::-1], 0, 1) * 255).astype(np.uint8))
        cv2.imwrite(stem + "_mesh.png", draw_frame(img, res, ("mesh",), rec))
        v, tris = rec.mesh(res.faces[0])
        xy = np.clip(np.round(v[:, :2]), 0, [img.shape[1] - 1, img.shape[0] - 1]).astype(int)
        col = img[xy[:, 1], xy[:, 0]][:, ::-1] / 255.0
        write_obj(stem + ".obj", v, tris, colors=col)
        write_ply(stem + ".ply", v, tris, colors=col)
        written += [stem + s for s in ("_depth.png", "_pncc.png", "_mesh.png", ".obj", ".ply")]
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(res.to_dict(), f, indent=1)
    written.append(stem + ".json")
    overlays = ("landmarks", "axes") + (("depth",) if rec.head.dense else ())
    st = VideoRunner(rec, overlays=overlays, out=os.path.join(out_dir, "astronaut_clip.mp4"),
                     print_every=0).run(clip_frames(img, frames))
    written.append(os.path.join(out_dir, "astronaut_clip.mp4"))
    for p in written:
        print(f"wrote {p}")
    f = res.faces[0]
    print(f"astronaut: {len(res.faces)} face(s); yaw {f.pose[0]:+.1f}, pitch {f.pose[1]:+.1f}, "
          f"roll {f.pose[2]:+.1f} deg; {total:.1f} ms for the image:")
    for k, v in res.timings.items():
        print(f"  {k:12s} {v:8.2f} ms")
    print(f"clip: {st.frames_processed} frames 640x480, {st.fps:.1f} fps end to end (tracking); "
          "ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in st.stage_ms.items()))
    return dict(res.timings, clip_fps=st.fps)
