import math

import numpy as np
import pytest
import torch

from pyface3d.morphable import (MorphableModel, decompose_pose, euler_angles, join_params,
                                mirror_pose, pose_from_euler, rotation_from_euler,
                                split_params, unwhiten, whiten, whitening_stats)


def _matrix2angle_3ddfa_v2(R):
    """Scalar transcription of 3DDFA_V2's utils/pose.py matrix2angle (the reference)."""
    if R[2, 0] > 0.998:
        z, x = 0.0, math.pi / 2
        y = z + math.atan2(-R[0, 1], -R[0, 2])
    elif R[2, 0] < -0.998:
        z, x = 0.0, -math.pi / 2
        y = -z + math.atan2(R[0, 1], R[0, 2])
    else:
        x = math.asin(R[2, 0])
        y = math.atan2(R[2, 1] / math.cos(x), R[2, 2] / math.cos(x))
        z = math.atan2(R[1, 0] / math.cos(x), R[0, 0] / math.cos(x))
    return x, y, z


def _p2srt(P):
    r1 = P[0, :3] / np.linalg.norm(P[0, :3])
    r2 = P[1, :3] / np.linalg.norm(P[1, :3])
    s = (np.linalg.norm(P[0, :3]) + np.linalg.norm(P[1, :3])) / 2
    return s, np.stack([r1, r2, np.cross(r1, r2)]), P[:, 3]


def test_split_join_roundtrip():
    p = torch.randn(5, 12 + 40 + 10)
    pose, a, e = split_params(p, 40, 10)
    assert pose.shape == (5, 3, 4) and a.shape == (5, 40) and e.shape == (5, 10)
    assert torch.equal(pose[2, 1], p[2, 4:8])  # row-major
    assert torch.equal(join_params(pose, a, e), p)
    with pytest.raises(ValueError, match="params"):
        split_params(p, 40, 9)
    with pytest.raises(ValueError, match="pose"):
        join_params(torch.zeros(5, 12), a, e)
    with pytest.raises(ValueError, match="exp_coeff"):
        join_params(pose, a, e[:4])


def test_whiten_unwhiten():
    p = torch.randn(7, 22, dtype=torch.float64)
    m, s = torch.randn(22, dtype=torch.float64), torch.rand(22, dtype=torch.float64) + 0.1
    w = whiten(p, m, s)
    torch.testing.assert_close(w, (p - m) / s)
    torch.testing.assert_close(unwhiten(w, m, s), p)
    with pytest.raises(ValueError, match="param_std"):
        whiten(p, m, s[:5])


def test_whitening_stats():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(500, 6))
    x[:, 4] = 7.0                                   # constant column -> floor
    m, s = whitening_stats(x, std_floor=1e-3)
    np.testing.assert_allclose(m.numpy(), x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(s.numpy()[[0, 1, 2, 3, 5]], x.std(0)[[0, 1, 2, 3, 5]], rtol=1e-6)
    assert s[4].item() == pytest.approx(1e-3)
    m2, s2 = whitening_stats(torch.from_numpy(x), std_floor=1e-3)
    assert torch.equal(m, m2) and torch.equal(s, s2)
    with pytest.raises(ValueError, match="samples"):
        whitening_stats(x[:1])
    with pytest.raises(ValueError, match="samples"):
        whitening_stats(x[:5], min_samples=10)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        whitening_stats(bad)
    with pytest.raises(ValueError, match="std_floor"):
        whitening_stats(x, std_floor=0)
    with pytest.raises(ValueError, match="params"):
        whitening_stats(x[0])


def test_euler_roundtrip():
    g = torch.Generator().manual_seed(1)
    B = 200
    yaw = (torch.rand(B, generator=g, dtype=torch.float64) - 0.5) * math.radians(170)
    pitch = (torch.rand(B, generator=g, dtype=torch.float64) - 0.5) * math.radians(160)
    roll = (torch.rand(B, generator=g, dtype=torch.float64) - 0.5) * math.radians(160)
    scale = torch.rand(B, generator=g, dtype=torch.float64) * 1e-3 + 1e-4
    t = torch.randn(B, 3, generator=g, dtype=torch.float64) * 50
    P = pose_from_euler(yaw, pitch, roll, scale, t)
    assert P.shape == (B, 3, 4)
    R = rotation_from_euler(yaw, pitch, roll)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=R.dtype).expand(B, 3, 3))
    y2, p2, r2 = euler_angles(P)
    torch.testing.assert_close(y2, yaw)
    torch.testing.assert_close(p2, pitch)
    torch.testing.assert_close(r2, roll)
    s2, R2, t2 = decompose_pose(P)
    torch.testing.assert_close(s2, scale)
    torch.testing.assert_close(R2, R)
    torch.testing.assert_close(t2, t)
    yd, pd, rd = euler_angles(P, degrees=True)
    torch.testing.assert_close(yd, torch.rad2deg(yaw))
    # degrees in
    P2 = pose_from_euler(torch.rad2deg(yaw), torch.rad2deg(pitch), torch.rad2deg(roll), scale,
                         t, degrees=True)
    torch.testing.assert_close(P2, P)


def test_euler_matches_3ddfa_v2_reference():
    g = torch.Generator().manual_seed(2)
    P = torch.randn(300, 3, 4, generator=g, dtype=torch.float64)   # arbitrary (non-rotation)
    # plus exact gimbal cases (yaw = +-90 degrees) and near-gimbal ones
    Pg = pose_from_euler(torch.tensor([math.pi / 2, -math.pi / 2, 1.52, -1.55]),
                         torch.tensor([0.3, -0.4, 0.2, 0.1]), torch.tensor([0.0, 0.0, 0.2, -0.3]),
                         2.0, torch.zeros(3))
    P = torch.cat([P, Pg.double()])
    yaw, pitch, roll = euler_angles(P)
    for i in range(P.shape[0]):
        _, R, _ = _p2srt(P[i].numpy())
        ref = _matrix2angle_3ddfa_v2(R)
        got = (yaw[i].item(), pitch[i].item(), roll[i].item())
        np.testing.assert_allclose(got, ref, atol=1e-9, err_msg=f"row {i}")
    # the gimbal branch returns pitch for roll = 0 and yaw = +-90
    np.testing.assert_allclose(yaw[-4:-2].numpy(), [math.pi / 2, -math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(pitch[-4:-2].numpy(), [0.3, -0.4], atol=1e-9)


def test_pose_errors():
    with pytest.raises(ValueError, match="pose"):
        euler_angles(torch.zeros(2, 12))
    with pytest.raises(ValueError, match="pose"):
        decompose_pose(torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="pitch"):
        pose_from_euler(torch.zeros(3), torch.zeros(2), 0.0, 1.0, torch.zeros(3))
    with pytest.raises(ValueError, match="scale"):
        pose_from_euler(0.1, 0.0, 0.0, -1.0, torch.zeros(3))
    with pytest.raises(ValueError, match="`t`"):
        pose_from_euler(torch.zeros(2), 0.0, 0.0, 1.0, torch.zeros(2, 2))
    with pytest.raises(TypeError, match="pose"):
        mirror_pose(np.zeros((1, 3, 4)))


def _symmetric_model():
    rng = np.random.default_rng(3)
    half = rng.normal(size=(20, 3))
    half[:, 0] = np.abs(half[:, 0]) + 0.1
    mirrored = half * np.array([-1, 1, 1])
    verts = np.concatenate([half, mirrored])                  # vertex i <-> i + 20
    perm = np.concatenate([np.arange(20, 40), np.arange(20)])
    lm = np.arange(68) % 40
    m = MorphableModel(mean=verts.reshape(-1).astype(np.float32),
                       id_basis=np.zeros((120, 0), np.float32),
                       exp_basis=np.zeros((120, 0), np.float32),
                       triangles=np.array([[0, 1, 2]]), landmarks68=lm,
                       param_mean=np.zeros(12, np.float32), param_std=np.ones(12, np.float32))
    return m, perm


def test_mirror_pose():
    m, perm = _symmetric_model()
    yaw, pitch = torch.tensor([0.5, -1.0]), torch.tensor([0.2, 0.1])
    roll = torch.tensor([-0.3, 0.4])
    P = pose_from_euler(yaw, pitch, roll, torch.tensor([3.0, 2.5]),
                        torch.tensor([[55.0, 62.0, 4.0], [64.0, 58.0, -3.0]]))
    v = m.reconstruct(P.reshape(2, 12))
    vm = m.reconstruct(mirror_pose(P).reshape(2, 12))
    flipped = v.clone()
    flipped[..., 0] = 121.0 - flipped[..., 0]        # crop x -> 121 - x  (x_img -> 119 - x_img)
    torch.testing.assert_close(vm[:, perm], flipped, rtol=1e-5, atol=1e-4)
    y2, p2, r2 = euler_angles(mirror_pose(P))
    torch.testing.assert_close(y2, -yaw)
    torch.testing.assert_close(p2, pitch)
    torch.testing.assert_close(r2, -roll)
    torch.testing.assert_close(mirror_pose(mirror_pose(P)), P)
    P2 = mirror_pose(P, crop_size=256.0)
    assert P2[0, 0, 3].item() == pytest.approx(257.0 - 55.0)
