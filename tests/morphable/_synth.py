"""Small synthetic inputs for the morphable tests (written into tmp_path, never committed)."""
import numpy as np
import torch

from pyface3d.morphable import MorphableModel


def grid_mesh(nx=10, ny=6):
    """A wavy grid symmetric in x: vertices (nx*ny, 3), quads (F, 4) with a few triangles."""
    xs = np.linspace(-5, 5, nx)
    ys = np.linspace(-3, 3, ny)
    X, Y = np.meshgrid(xs, ys)               # row-major in y
    Z = np.cos(X / 3) + 0.3 * np.cos(Y)
    v = np.stack([X, Y, Z], -1).reshape(-1, 3).astype(np.float32)
    faces = []
    for j in range(ny - 1):
        for i in range(nx - 1):
            a, b, c, d = j * nx + i, j * nx + i + 1, (j + 1) * nx + i + 1, (j + 1) * nx + i
            if (i + j) % 7 == 3:             # some triangles, -1 padded
                faces.append([a, b, c, -1])
                faces.append([a, c, d, -1])
            else:
                faces.append([a, b, c, d])
    return v, np.asarray(faces, np.int32)


def ict_like_npz(path, n_id=12, n_exp=8, seed=0, nx=10, ny=6, face_rows=4):
    """An ICT-FaceKit-like npz (layout of ict_facekit_face_head.npz)."""
    rng = np.random.default_rng(seed)
    v, faces = grid_mesh(nx, ny)
    V = v.shape[0]
    nf = face_rows * nx
    scales = np.linspace(2.0, 0.2, n_id)
    idd = (rng.normal(size=(n_id, V, 3)) * scales[:, None, None]).astype(np.float32)
    exd = (rng.normal(size=(n_exp, V, 3)) * (rng.uniform(size=(n_exp, V, 1)) > 0.6)).astype(
        np.float32)
    uvs = np.concatenate([(v[:, :2] + 5) / 10, [[0.5, 0.5]]]).astype(np.float32)
    d = dict(
        vertices_neutral=v, faces=faces, uvs=uvs, faces_uv=faces.copy(),
        identity_deltas=idd, expression_deltas=exd,
        expression_names=np.array([f"exp{i}" for i in range(n_exp)]),
        identity_names=np.array([f"identity{i:03d}" for i in range(n_id)]),
        landmarks68=rng.choice(nf, 68).astype(np.int32),
        fitting_vertices=np.arange(nf, dtype=np.int32),
        rigid_vertices=np.arange(0, nf, 3, dtype=np.int32),
        region_face=np.array([0, nf]), region_face_narrow=np.array([0, nx]),
        region_head_neck=np.array([nf, V]))
    np.savez(path, **d)
    return d


def random_model(N=50, I=6, E=4, F=40, seed=0, uvs=False, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    kw = {}
    if uvs:
        kw = dict(uvs=torch.rand(N, 2, generator=g),
                  uv_triangles=torch.randint(0, N, (F, 3), generator=g))
    return MorphableModel(
        mean=torch.randn(3 * N, generator=g, dtype=dtype),
        id_basis=torch.randn(3 * N, I, generator=g, dtype=dtype),
        exp_basis=torch.randn(3 * N, E, generator=g, dtype=dtype),
        triangles=torch.randint(0, N, (F, 3), generator=g),
        landmarks68=torch.randint(0, N, (68,), generator=g),
        param_mean=torch.randn(12 + I + E, generator=g, dtype=dtype),
        param_std=torch.rand(12 + I + E, generator=g, dtype=dtype) + 0.5,
        name="random", metadata={"unit": "cm", "k": [1, 2]}, **kw)
