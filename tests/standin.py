"""A small random MorphableModel stand-in (duck-typed) and rotations, shared by the losses
and fitting tests (their conftest files re-export the fixtures)."""
import math
import types

import pytest
import torch


def _make_standin(n=200, i=40, e=10, seed=0, dtype=torch.float32):
    """A small random MorphableModel stand-in (duck-typed interface of ISSUE3.md)."""
    g = torch.Generator().manual_seed(seed)
    # points on an ellipsoid-ish cloud of radius ~1 (model units)
    pts = torch.randn(n, 3, generator=g, dtype=torch.float64)
    pts = pts / pts.norm(dim=1, keepdim=True) * torch.tensor([1.0, 1.2, 0.8], dtype=torch.float64)
    mean = pts.reshape(-1)
    id_basis = torch.randn(3 * n, i, generator=g, dtype=torch.float64) * 0.05
    exp_basis = torch.randn(3 * n, e, generator=g, dtype=torch.float64) * 0.03
    pose_mean = torch.tensor([50.0, 0, 0, 60, 0, 50, 0, 60, 0, 0, 50, 0], dtype=torch.float64)
    pose_std = torch.tensor([5.0, 5, 5, 4, 5, 5, 5, 4, 5, 5, 5, 1], dtype=torch.float64)
    coef_std = torch.rand(i + e, generator=g, dtype=torch.float64) * 1.5 + 0.5
    param_mean = torch.cat((pose_mean, torch.zeros(i + e, dtype=torch.float64)))
    param_std = torch.cat((pose_std, coef_std))
    lm = torch.randperm(n, generator=g)[:68].long()
    return types.SimpleNamespace(
        mean=mean.to(dtype), id_basis=id_basis.to(dtype), exp_basis=exp_basis.to(dtype),
        landmarks68=lm, param_mean=param_mean.to(dtype), param_std=param_std.to(dtype),
        triangles=torch.zeros(0, 3, dtype=torch.int32), name="standin", I=i, E=e)


def _rotation(yaw, pitch, roll, dtype=torch.float64):
    """R = Rx(pitch) Ry(yaw) Rz(roll) (3DDFA order), angles in radians."""
    cx, sx = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    cz, sz = math.cos(roll), math.sin(roll)
    rx = torch.tensor([[1, 0, 0], [0, cx, sx], [0, -sx, cx]], dtype=dtype)
    ry = torch.tensor([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]], dtype=dtype)
    rz = torch.tensor([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]], dtype=dtype)
    return rx @ ry @ rz


@pytest.fixture
def make_standin():
    """Factory fixture: ``make_standin(n=200, i=40, e=10, seed=0, dtype=float32)``."""
    return _make_standin


@pytest.fixture
def rotation():
    """Factory fixture: ``rotation(yaw, pitch, roll)`` (radians) -> (3, 3) float64."""
    return _rotation


@pytest.fixture
def standin():
    return _make_standin()
