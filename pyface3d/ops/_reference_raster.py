"""Pure-PyTorch references of the raster family (test oracle and fallback).

They follow the exact arithmetic of the compiled kernels (``csrc/kernels/raster.h``):
float64 geometry, canonically ordered edge functions, the top-left fill rule,
depth rounded to the output dtype before the z-test and ties to the smaller
face index, so coverage and the winning faces match the kernels bit for bit.

``rasterize`` tests every pixel centre against every triangle (vectorised, in
chunks of triangles to bound memory): fine for small meshes, slow for big ones.
"""
import torch

__all__ = ["rasterize", "interpolate", "interpolate_backward", "render_depth", "render_pncc",
           "ncc_code"]

_A = [1, 2, 0]  # edge k runs from vertex _A[k] to vertex _B[k] (opposite vertex k)
_B = [2, 0, 1]


def rasterize(vertices, triangles, height, width, x0=0, y0=0):
    """Reference of :func:`pyface3d.ops.raster.rasterize`.

    vertices (B, N, 3), triangles (F, 3) -> face_index (B, H, W) int32,
    bary (B, H, W, 3), depth (B, H, W).
    """
    if height < 1 or width < 1:
        raise ValueError("rasterize: `height` and `width` must be >= 1")
    B, N, _ = vertices.shape
    H, W = int(height), int(width)
    dtype, dev = vertices.dtype, vertices.device
    F = triangles.shape[0]
    face = torch.full((B, H, W), -1, dtype=torch.int32, device=dev)
    bary = torch.zeros((B, H, W, 3), dtype=dtype, device=dev)
    depth = torch.zeros((B, H, W), dtype=dtype, device=dev)
    if B == 0 or F == 0:
        return face, bary, depth
    tri = triangles.long()
    if tri.min() < 0 or tri.max() >= N:
        raise IndexError("rasterize: argument `triangles` out of range")
    tv = vertices.double()[:, tri]  # (B, F, 3 vertices, 3 coords)
    valid = torch.isfinite(tv).all(-1).all(-1)
    tv = torch.where(valid[..., None, None], tv, torch.zeros_like(tv))
    x, y, z = tv[..., 0], tv[..., 1], tv[..., 2]  # (B, F, 3)
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - \
        (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])
    valid = valid & (area != 0) & torch.isfinite(area)
    orient = torch.where(area > 0, 1.0, -1.0).to(torch.float64)[..., None]
    xa, ya, xb, yb = x[..., _A], y[..., _A], x[..., _B], y[..., _B]
    ab = (ya < yb) | ((ya == yb) & (xa < xb))
    lx, ly = torch.where(ab, xa, xb), torch.where(ab, ya, yb)
    hx, hy = torch.where(ab, xb, xa), torch.where(ab, yb, ya)
    s = torch.where(ab, orient, -orient)
    sdx, sdy = s * (hx - lx), s * (hy - ly)
    incl = (sdy < 0) | ((sdy == 0) & (sdx > 0))

    P = H * W
    py = (torch.arange(H, device=dev, dtype=torch.float64) + y0)[:, None].expand(H, W).reshape(P)
    px = (torch.arange(W, device=dev, dtype=torch.float64) + x0)[None, :].expand(H, W).reshape(P)
    best_z = torch.full((B, P), float("-inf"), dtype=dtype, device=dev)
    best_f = torch.full((B, P), -1, dtype=torch.int64, device=dev)
    best_b = torch.zeros((B, P, 3), dtype=dtype, device=dev)
    chunk = max(1, (1 << 18) // max(1, B * P))  # bounds temporaries to ~10 MB
    for f0 in range(0, F, chunk):  # loop over chunks of triangles, not elements
        sl = slice(f0, min(F, f0 + chunk))
        e = lambda t: t[:, sl, :, None]  # noqa: E731  (B, Fc, 3, 1)
        w = e(sdx) * (py - e(ly)) - e(sdy) * (px - e(lx))  # (B, Fc, 3, P)
        ok = (w > 0) | ((w == 0) & e(incl))
        ssum = (w[:, :, 0] + w[:, :, 1]) + w[:, :, 2]  # (B, Fc, P)
        cov = ok.all(2) & (ssum > 0) & valid[:, sl, None]
        ssum = torch.where(cov, ssum, torch.ones_like(ssum))
        b = w / ssum[:, :, None]
        zz = z[:, sl, :, None]
        zd = (b[:, :, 0] * zz[:, :, 0] + b[:, :, 1] * zz[:, :, 1]) + b[:, :, 2] * zz[:, :, 2]
        zt = zd.to(dtype)
        zt = torch.where(zt == 0, torch.zeros_like(zt), zt)
        zm = torch.where(cov, zt, torch.full_like(zt, float("-inf")))
        zmax = zm.max(1).values  # (B, P)
        cand = cov & (zm == zmax[:, None])
        has = cand.any(1)
        idx = cand.to(torch.int8).argmax(1)  # first candidate: smallest face
        better = has & ((best_f < 0) | (zmax > best_z))
        bsel = b.gather(1, idx[:, None, None, :].expand(B, 1, 3, P))[:, 0].permute(0, 2, 1)
        best_z = torch.where(better, zmax, best_z)
        best_f = torch.where(better, idx + f0, best_f)
        best_b = torch.where(better[..., None], bsel.to(dtype), best_b)
    hit = best_f >= 0
    face = best_f.to(torch.int32).reshape(B, H, W)
    depth = torch.where(hit, best_z, torch.zeros_like(best_z)).reshape(B, H, W)
    bary = best_b.reshape(B, H, W, 3)
    return face, bary, depth


def interpolate(attributes, face_index, bary, triangles):
    """Reference of :func:`pyface3d.ops.raster.interpolate`: (B, H, W, C)."""
    B, H, W = face_index.shape
    N, C = attributes.shape[1], attributes.shape[2]
    F = triangles.shape[0]
    f = face_index.long()
    if f.numel() and (f.min() < -1 or f.max() >= F):
        raise IndexError("interpolate: argument `face_index` out of range")
    tri = triangles.long()
    if tri.numel() and (tri.min() < 0 or tri.max() >= N):
        raise IndexError("interpolate: argument `triangles` out of range")
    if B * H * W == 0 or F == 0:
        return attributes.new_zeros((B, H, W, C))
    A = attributes.expand(B, N, C) if attributes.shape[0] == 1 else attributes
    mask = f >= 0
    vid = tri[f.clamp(min=0)]  # (B, H, W, 3)
    bidx = torch.arange(B, device=f.device)[:, None, None, None]
    a = A[bidx, vid]  # (B, H, W, 3, C)
    out = (bary[..., 0:1] * a[..., 0, :] + bary[..., 1:2] * a[..., 1, :]) + \
        bary[..., 2:3] * a[..., 2, :]
    return torch.where(mask[..., None], out, torch.zeros_like(out))


def interpolate_backward(grad, face_index, bary, triangles, num_vertices, broadcast):
    """Reference of ``_interpolate_backward``: ((1 if broadcast else B), N, C)."""
    B, H, W = face_index.shape
    C = grad.shape[-1]
    out = grad.new_zeros((1 if broadcast else B, num_vertices, C))
    if B * H * W == 0 or triangles.shape[0] == 0:
        return out
    f = face_index.long()
    mask = (f >= 0).to(grad.dtype)
    vid = triangles.long()[f.clamp(min=0)]  # (B, H, W, 3)
    contrib = bary[..., :, None] * grad[..., None, :] * mask[..., None, None]  # (B,H,W,3,C)
    if broadcast:
        out[0].index_add_(0, vid.reshape(-1), contrib.reshape(-1, C))
    else:
        flat = (vid + torch.arange(B, device=f.device)[:, None, None, None] * num_vertices)
        out.view(-1, C).index_add_(0, flat.reshape(-1), contrib.reshape(-1, C))
    return out


def render_depth(vertices, triangles, height, width, x0=0, y0=0):
    """Depth map (B, H, W), 0 on background."""
    return rasterize(vertices, triangles, height, width, x0, y0)[2]


def ncc_code(mean_vertices):
    """(N, 3) -> (N, 3): each axis normalised to [0, 1] by its min and max."""
    lo = mean_vertices.amin(0, keepdim=True)
    hi = mean_vertices.amax(0, keepdim=True)
    rng = hi - lo
    return torch.where(rng > 0, (mean_vertices - lo) / torch.where(rng > 0, rng, 1), 0)


def render_pncc(vertices, triangles, ncc, height, width, x0=0, y0=0):
    """PNCC image (B, H, W, 3), 0 on background."""
    face, bary, _ = rasterize(vertices, triangles, height, width, x0, y0)
    return interpolate(ncc.to(vertices.dtype)[None], face, bary, triangles)
