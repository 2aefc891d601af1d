"""A small synthetic morphable model for training tests (no ../shared needed)."""
import torch

from pyface3d.demo import head_landmarks68, head_mesh
from pyface3d.morphable import MorphableModel, whitening_stats


def toy_morphable(n_lat=24, n_lon=32, I=8, E=4, seed=0) -> MorphableModel:
    v, tri = head_mesh(n_lat, n_lon)
    v = torch.from_numpy(v).double() * 50.0  # ~ a face a hundred units wide
    N = v.shape[0]
    g = torch.Generator().manual_seed(seed)
    # smooth deformation fields: low-order polynomials of the position, per axis
    x, y, z = (v / 50.0).unbind(1)
    feats = torch.stack([x, y, z, x * y, y * z, x * z, x * x, y * y, z * z, x * y * z], 1)

    def basis(k, amp):
        cols = []
        for _ in range(k):
            w = torch.randn(feats.shape[1], 3, generator=g, dtype=torch.float64)
            cols.append((feats @ w).reshape(-1))
        b = torch.stack(cols, 1)
        return amp * b / b.norm(dim=0, keepdim=True) * (3 * N) ** 0.5

    id_basis, exp_basis = basis(I, 2.0), basis(E, 1.0)
    # landmarks: the mesh vertex nearest to each analytic landmark
    lm = torch.from_numpy(head_landmarks68()).double() * 50.0
    ids = torch.cdist(lm, v).argmin(1)
    P = 12 + I + E
    mm = MorphableModel(mean=v.reshape(-1).float(), id_basis=id_basis.float(),
                        exp_basis=exp_basis.float(),
                        triangles=torch.from_numpy(tri).int(), landmarks68=ids.long(),
                        param_mean=torch.zeros(P), param_std=torch.ones(P), name="toy")
    # pose whitening from the rendered set's pose distribution
    from pyface3d.train.datasets import RenderedFaces

    ds = RenderedFaces(mm, n=256, seed=123)
    params = torch.stack([ds.params_of(i) for i in range(256)])
    mean, std = whitening_stats(params)
    mean[12:], std[12:] = 0.0, 1.0
    return MorphableModel(mean=mm.mean, id_basis=mm.id_basis, exp_basis=mm.exp_basis,
                          triangles=mm.triangles, landmarks68=mm.landmarks68,
                          param_mean=mean.float(), param_std=std.float(), name="toy")
