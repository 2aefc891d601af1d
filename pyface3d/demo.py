"""``make demo`` / ``pyface3d demo``: exercise the compiled core end to end.

Until the face pipeline exists this renders, for a procedural face-like head
mesh seen at several yaw angles: the depth map and PNCC through the Z-buffer
rasterizer, the 68 landmarks, and their Gaussian heatmaps (encoded, then decoded
back with DARK refinement), all to PNG files. Needs nothing but the package.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from . import ops


# ----------------------------------------------------------------------------
# A procedural head: an ellipsoid with a nose, brows, eye sockets, lips and chin,
# and 68 landmarks in the iBUG layout placed analytically on its surface.
# ----------------------------------------------------------------------------
_AX, _AY, _AZ = 0.8, 1.05, 0.85


def _bumps(x, y):
    """Height added to the front of the ellipsoid (toward +z)."""
    g = lambda cx, cy, sx, sy: np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))  # noqa: E731
    h = 0.22 * g(0.0, -0.08, 0.09, 0.22)  # nose
    h += 0.06 * g(0.0, -0.25, 0.16, 0.05)  # nose base
    h += 0.05 * g(-0.3, 0.36, 0.2, 0.05) + 0.05 * g(0.3, 0.36, 0.2, 0.05)  # brows
    h -= 0.07 * g(-0.3, 0.2, 0.13, 0.07) + 0.07 * g(0.3, 0.2, 0.13, 0.07)  # eye sockets
    h += 0.05 * g(0.0, -0.45, 0.25, 0.08)  # lips
    h += 0.04 * g(0.0, -0.78, 0.2, 0.1)  # chin
    return h


def _front_z(x, y):
    r = np.clip(1 - (x / _AX) ** 2 - (y / _AY) ** 2, 0, None)
    return _AZ * np.sqrt(r)


def head_mesh(n_lat: int = 120, n_lon: int = 160):
    """Vertices (N,3) float32 (x right, y up, z toward the viewer) and triangles (F,3) int32."""
    phi = np.linspace(-math.pi / 2, math.pi / 2, n_lat)  # latitude
    lam = np.linspace(-math.pi, math.pi, n_lon, endpoint=False)  # longitude, 0 = front
    P, L = np.meshgrid(phi, lam, indexing="ij")
    x = _AX * np.cos(P) * np.sin(L)
    y = _AY * np.sin(P)
    z = _AZ * np.cos(P) * np.cos(L)
    front = np.clip(z / _AZ, 0, 1) ** 0.5
    z = z + front * _bumps(x, y)
    v = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
    idx = np.arange(n_lat * n_lon).reshape(n_lat, n_lon)
    a = idx[:-1, :]
    b = idx[1:, :]
    c = np.roll(idx[1:, :], -1, axis=1)
    d = np.roll(idx[:-1, :], -1, axis=1)
    tri = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                          np.stack([a, c, d], -1).reshape(-1, 3)]).astype(np.int32)
    return v, tri


def head_landmarks68():
    """68 points (iBUG order) on the procedural head's surface, (68,3) float32."""
    pts = []
    t = np.linspace(math.pi * 0.98, math.pi * 2.02, 17)  # jaw from left ear to right ear
    pts += [(0.74 * math.cos(a), 0.12 + 0.92 * math.sin(a)) for a in t]
    for s in (-1, 1):  # brows 17-21 (left) and 22-26 (right), outer to inner on the left
        xs = np.linspace(-0.55, -0.12, 5) if s < 0 else np.linspace(0.12, 0.55, 5)
        pts += [(x, 0.36 + 0.05 * math.cos((abs(x) - 0.33) * 4)) for x in xs]
    pts += [(0.0, y) for y in np.linspace(0.22, -0.1, 4)]  # nose bridge 27-30
    pts += [(x, -0.22 + 0.03 * abs(x) / 0.15) for x in np.linspace(-0.15, 0.15, 5)]  # 31-35
    for cx in (-0.3, 0.3):  # eyes 36-41, 42-47
        ang = [math.pi, 2 * math.pi / 3, math.pi / 3, 0.0, -math.pi / 3, -2 * math.pi / 3]
        pts += [(cx + 0.12 * math.cos(a), 0.2 + 0.05 * math.sin(a)) for a in ang]
    ang = np.linspace(math.pi, -math.pi, 13)[:-1]  # outer lips 48-59
    pts += [(0.28 * math.cos(a), -0.45 + 0.12 * math.sin(a)) for a in ang]
    ang = np.linspace(math.pi, -math.pi, 9)[:-1]  # inner lips 60-67
    pts += [(0.18 * math.cos(a), -0.45 + 0.04 * math.sin(a)) for a in ang]
    xy = np.array(pts, dtype=np.float64)
    z = _front_z(xy[:, 0], xy[:, 1])
    z = z + np.clip(z / _AZ, 0, 1) ** 0.5 * _bumps(xy[:, 0], xy[:, 1])
    return np.concatenate([xy, z[:, None]], 1).astype(np.float32)


def _rotation_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]],
                    dtype=np.float32)


def _to_image(v: np.ndarray, size: int, yaw: float) -> np.ndarray:
    """Rotate by yaw, then scaled orthographic projection into a size x size image
    (x right, y down, z toward the camera)."""
    r = v @ _rotation_y(yaw).T
    s = size / 2.4
    out = np.empty_like(r)
    out[:, 0] = size / 2 + s * r[:, 0]
    out[:, 1] = size / 2 - s * r[:, 1]
    out[:, 2] = s * r[:, 2]
    return out


def _colorize_depth(depth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import cv2

    img = np.zeros(depth.shape + (3,), np.uint8)
    if mask.any():
        d = depth[mask]
        n = (depth - d.min()) / max(float(d.max() - d.min()), 1e-6)
        gray = (np.clip(n, 0, 1) * 255).astype(np.uint8)
        img = cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)
        img[~mask] = 0
    return img


def run_demo(out_dir: str = "demo_out", size: int = 256) -> dict:
    """Write the demo images to ``out_dir``; returns timings (seconds) per stage."""
    import cv2

    os.makedirs(out_dir, exist_ok=True)
    verts, tris = head_mesh()
    lms = head_landmarks68()
    ncc = ops.ncc_code(torch.from_numpy(verts))
    tri_t = torch.from_numpy(tris)
    yaws = [-60.0, -30.0, 0.0, 30.0, 60.0]
    v_img = torch.from_numpy(np.stack([_to_image(verts, size, y) for y in yaws]))
    l_img = torch.from_numpy(np.stack([_to_image(lms, size, y) for y in yaws]))
    timings = {}
    ops.rasterize(v_img[:1], tri_t, size, size)  # warm-up (thread pool, scratch buffers)

    t0 = time.perf_counter()
    face_index, bary, depth = ops.rasterize(v_img, tri_t, size, size)
    timings["rasterize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pncc = ops.interpolate(ncc[None], face_index, bary, tri_t)
    timings["pncc_interpolate"] = time.perf_counter() - t0

    # Landmark visibility from the Z-buffer: a landmark is visible when the depth
    # rendered at its pixel is not in front of it.
    hm_size = 64
    scale = hm_size / size
    pts_hm = l_img[..., :2] * scale
    px = l_img[..., 0].round().long().clamp(0, size - 1)
    py = l_img[..., 1].round().long().clamp(0, size - 1)
    bidx = torch.arange(len(yaws))[:, None]
    vis = (depth[bidx, py, px] <= l_img[..., 2] + 2.0) & (face_index[bidx, py, px] >= 0)

    t0 = time.perf_counter()
    heatmaps, weight = ops.heatmap_encode(pts_hm, vis.float(), hm_size, hm_size, sigma=1.5)
    timings["heatmap_encode"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    coords, scores = ops.heatmap_decode(heatmaps, refine="dark")
    timings["heatmap_decode_dark"] = time.perf_counter() - t0
    ok = weight > 0
    err = ((coords - pts_hm).norm(dim=-1)[ok]).mean().item() if ok.any() else float("nan")

    mask = (face_index >= 0).numpy()
    panels = {"depth": [], "pncc": [], "landmarks": [], "heatmaps": []}
    for i, yaw in enumerate(yaws):
        dimg = _colorize_depth(depth[i].numpy(), mask[i])
        panels["depth"].append(dimg)
        p = (pncc[i].clamp(0, 1).numpy()[..., ::-1] * 255).astype(np.uint8)  # RGB -> BGR
        panels["pncc"].append(np.ascontiguousarray(p))
        lm = dimg.copy()
        for k in range(68):
            x, y = float(l_img[i, k, 0]), float(l_img[i, k, 1])
            color = (80, 255, 80) if bool(vis[i, k]) else (80, 80, 255)
            cv2.circle(lm, (int(round(x)), int(round(y))), 2, color, -1, cv2.LINE_AA)
        panels["landmarks"].append(lm)
        hm = heatmaps[i].amax(0).numpy()
        hm = cv2.resize((hm * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
        hm = cv2.applyColorMap(hm, cv2.COLORMAP_JET)
        panels["heatmaps"].append(cv2.addWeighted(dimg, 0.5, hm, 0.5, 0))
    for name, imgs in panels.items():
        path = os.path.join(out_dir, f"{name}.png")
        cv2.imwrite(path, np.concatenate(imgs, axis=1))
        print(f"wrote {path}  ({len(yaws)} views, yaw {yaws[0]:+.0f}..{yaws[-1]:+.0f} deg)")
    print(f"mesh: {len(verts)} vertices, {len(tris)} triangles, {size}x{size}, batch {len(yaws)}")
    for k, v in timings.items():
        print(f"  {k:22s} {v * 1e3:8.2f} ms")
    print(f"  heatmap round trip (DARK): mean error {err:.3f} px over {int(ok.sum())} visible points")
    timings["roundtrip_error_px"] = err
    return timings
