"""Tests of pyface3d.fitting: batched 3DMM fits to synthetic 2D / 3D landmarks."""
import math
import time

import pytest
import torch

from pyface3d import ops
from pyface3d.fitting import fit_landmarks, fit_to_model, procrustes_fit, scaled_rotation_fit
from tests.conftest import shared_dir


def _synthetic(model, rotation, b=16, seed=1, max_yaw=60.0, dtype=torch.float32):
    """Random params: |yaw| <= max_yaw, pitch/roll <= 20 deg, f in [40, 60], t around the
    crop centre, coefficients ~ N(0, param_std^2) (whitened ~ N(0, 1))."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(b):
        yaw, pitch, roll = ((torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1)
                            * torch.tensor([max_yaw, 20.0, 20.0], dtype=torch.float64)).tolist()
        f = 40 + 20 * torch.rand(1, generator=g).item()
        r = rotation(math.radians(yaw), math.radians(pitch), math.radians(roll))
        t = torch.tensor([60.0, 60.0, 0.0], dtype=torch.float64) + \
            3 * torch.randn(3, generator=g, dtype=torch.float64)
        c = torch.randn(model.param_std.shape[0] - 12, generator=g, dtype=torch.float64) * \
            model.param_std[12:].double()
        rows.append(torch.cat((torch.cat((f * r, t[:, None]), 1).reshape(12), c)))
    params = torch.stack(rows).to(dtype)
    lm = ops.morphable_reconstruct_params(params, model.mean.to(dtype), model.id_basis.to(dtype),
                                          model.exp_basis.to(dtype), model.landmarks68)
    return params, lm


def _coef_err(model, p, q):
    return ((p[:, 12:] - q[:, 12:]) / model.param_std[12:]).abs().max().item()


def test_recovers_params_2d_noise_free(standin, rotation):
    params, lm = _synthetic(standin, rotation)
    t0 = time.perf_counter()
    fit, info = fit_landmarks(standin, lm[..., :2], n_iter=10, prior_id=1e-8, prior_exp=1e-8,
                              return_info=True)
    elapsed = time.perf_counter() - t0
    assert fit.shape == params.shape and fit.dtype == torch.float32
    assert info["rms"].max() < 1e-3                      # landmark error ~ 0 (float32 input)
    # x, y rows of the pose (incl. t_x, t_y) and all coefficients are recovered
    assert (fit[:, :8] - params[:, :8]).abs().max() < 1e-3
    assert _coef_err(standin, fit, params) < 1e-3
    # the third row follows from orthonormality: f r3 = (f r1 x f r2) / f
    torch.testing.assert_close(fit[:, 8:11], params[:, 8:11], rtol=0, atol=1e-3)
    assert elapsed < 10.0, f"batch of 16 took {elapsed:.2f} s"


def test_recovers_params_3d(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=8, seed=2)
    fit = fit_landmarks(standin, lm, n_iter=8, prior_id=1e-8, prior_exp=1e-8)
    assert (fit[:, :12] - params[:, :12]).abs().max() < 1e-3    # including t_z
    assert _coef_err(standin, fit, params) < 1e-3


def test_noise_is_graceful(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=8, seed=3)
    g = torch.Generator().manual_seed(0)
    noisy = lm[..., :2] + 0.5 * torch.randn(lm[..., :2].shape, generator=g)   # 0.5 px
    fit, info = fit_landmarks(standin, noisy, prior_id=0.25, prior_exp=0.25, return_info=True)
    # residual about the noise level; the landmarks of the fit are close to the clean ones
    assert info["rms"].max() < 1.0
    v = ops.morphable_reconstruct_params(fit, standin.mean, standin.id_basis,
                                         standin.exp_basis, standin.landmarks68)
    assert (v[..., :2] - lm[..., :2]).norm(dim=2).mean() < 0.5
    assert (fit[:, [3, 7]] - params[:, [3, 7]]).abs().max() < 1.0
    f_fit = fit[:, :3].norm(dim=1)
    f_true = params[:, :3].norm(dim=1)
    assert ((f_fit - f_true).abs() / f_true).max() < 0.05


def test_visibility_zero_weights(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=6, seed=4)
    lm2 = lm[..., :2].clone()
    vis = torch.ones(6, 68)
    vis[:, :20] = 0                     # e.g. a self-occluded contour
    vis[0, 30:40] = 0
    lm2[vis == 0] = float("nan")        # invisible values are never read
    fit, info = fit_landmarks(standin, lm2, vis, prior_id=1e-8, prior_exp=1e-8,
                              return_info=True)
    assert torch.isfinite(fit).all()
    assert info["rms"].max() < 1e-3
    assert (fit[:, :8] - params[:, :8]).abs().max() < 1e-2
    # fractional weights work too
    w = torch.rand(6, 68) + 0.1
    fit2 = fit_landmarks(standin, lm[..., :2], w, prior_id=1e-8, prior_exp=1e-8)
    assert (fit2[:, :8] - params[:, :8]).abs().max() < 1e-3


def test_lbfgs_and_init(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=4, seed=5)
    fit, info = fit_landmarks(standin, lm[..., :2], n_iter=40, method="lbfgs", prior_id=1e-8,
                              prior_exp=1e-8, return_info=True)
    assert info["rms"].max() < 0.05
    # starting from the answer, Gauss-Newton stays there (t_z comes from init)
    init = params.clone()
    fit2 = fit_landmarks(standin, lm[..., :2], init=init, n_iter=3, prior_id=1e-8,
                         prior_exp=1e-8)
    assert (fit2 - params).abs().max() < 1e-3


def test_float64_and_priors(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=4, seed=6, dtype=torch.float64)
    fit = fit_landmarks(standin, lm[..., :2], prior_id=0, prior_exp=0)
    assert fit.dtype == torch.float64
    assert (fit[:, :8] - params[:, :8]).abs().max() < 1e-7
    # a huge prior pins the coefficients to param_mean (0 here)
    fit_p = fit_landmarks(standin, lm[..., :2], prior_id=1e9, prior_exp=1e9)
    assert fit_p[:, 12:].abs().max() < 1e-3


def test_closed_form_pose_solvers(rotation):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    r = torch.stack((rotation(0.5, 0.1, -0.2), rotation(-1.0, 0.3, 0.4)))
    f = torch.tensor([2.0, 0.5], dtype=torch.float64)
    t = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]], dtype=torch.float64)
    pts = f[:, None, None] * s @ r.transpose(1, 2) + t[:, None]
    w = torch.ones(2, 30, dtype=torch.float64)
    fr, tt = procrustes_fit(s, pts, w)
    torch.testing.assert_close(fr, f[:, None, None] * r)
    torch.testing.assert_close(tt, t)
    fr2, t2 = scaled_rotation_fit(s, pts[..., :2], w)
    torch.testing.assert_close(fr2, f[:, None, None] * r)
    torch.testing.assert_close(t2, t[:, :2])


def test_fit_to_model(make_standin, rotation):
    src = make_standin(n=300, seed=3)
    dst = make_standin(n=250, i=30, e=8, seed=4)
    params, _ = _synthetic(src, rotation, b=4, seed=7)
    out, info = fit_to_model(params, src, dst, return_info=True)
    assert out.shape == (4, 12 + 30 + 8)
    # same model: the conversion is the identity
    same = fit_to_model(params, src, src, prior_id=1e-8, prior_exp=1e-8)
    assert (same[:, :12] - params[:, :12]).abs().max() < 1e-3
    assert _coef_err(src, same, params) < 1e-3
    # a dense correspondence adds pairs
    corr = torch.stack((torch.arange(100), torch.arange(100)), 1)
    out2 = fit_to_model(params, src, dst, correspondence=corr)
    assert torch.isfinite(out2).all()
    with pytest.raises(ValueError, match="correspondence"):
        fit_to_model(params, src, dst, correspondence=torch.arange(5))


def test_bad_inputs(standin):
    lm = torch.zeros(2, 68, 2)
    with pytest.raises(ValueError, match="landmarks"):
        fit_landmarks(standin, torch.zeros(2, 67, 2))
    with pytest.raises(ValueError, match="visibility"):
        fit_landmarks(standin, lm, torch.ones(2, 60))
    with pytest.raises(ValueError, match="visibility"):
        v = torch.ones(2, 68)
        v[1, 3:] = 0
        fit_landmarks(standin, torch.randn(2, 68, 2), v)
    with pytest.raises(ValueError, match="method"):
        fit_landmarks(standin, lm, method="adam")
    with pytest.raises(ValueError, match="init"):
        fit_landmarks(standin, lm, init=torch.zeros(2, 10))
    with pytest.raises(ValueError, match="prior_id"):
        fit_landmarks(standin, lm, prior_id=-1)
    assert fit_landmarks(standin, torch.zeros(0, 68, 2)).shape == (0, 62)


@pytest.mark.cuda
def test_cuda_matches_cpu(standin, rotation):
    params, lm = _synthetic(standin, rotation, b=8, seed=8)
    cpu = fit_landmarks(standin, lm[..., :2], prior_id=1e-8, prior_exp=1e-8)
    gpu = fit_landmarks(standin, lm[..., :2].cuda(), prior_id=1e-8, prior_exp=1e-8)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-3)
    assert (gpu.cpu()[:, :8] - params[:, :8]).abs().max() < 1e-3


def _shared_dir():
    return shared_dir()


def test_real_bfm_landmark_bases(rotation):
    """The 68-landmark rows of 3DDFA's BFM (teacher assets): BFM units (~1e5) and
    f ~ 6e-4 must not hurt the conditioning."""
    import types

    import numpy as np
    d = _shared_dir() / "assets" / "teachers" / "3ddfa_v2_mb05"
    if not (d / "u_base.txt").is_file():
        pytest.skip(f"{d} not found (set PYFACE3D_SHARED)")

    def load(name):
        return torch.from_numpy(np.loadtxt(d / name, dtype=np.float32))
    model = types.SimpleNamespace(mean=load("u_base.txt").reshape(-1),
                                  id_basis=load("w_shp_base.txt"),
                                  exp_basis=load("w_exp_base.txt"),
                                  landmarks68=torch.arange(68),
                                  param_mean=load("param_mean_v2.txt"),
                                  param_std=load("param_std_v2.txt"))
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(8):
        yaw, pitch, roll = ((torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1)
                            * torch.tensor([60.0, 20.0, 20.0], dtype=torch.float64)).tolist()
        r = rotation(math.radians(yaw), math.radians(pitch), math.radians(roll))
        f = 5.8e-4 * (1 + 0.1 * torch.randn(1, generator=g).item())
        t = torch.tensor([60.0, 74.0, -66.0], dtype=torch.float64)
        c = (torch.randn(50, generator=g, dtype=torch.float64) * model.param_std[12:].double()
             + model.param_mean[12:].double())
        rows.append(torch.cat((torch.cat((f * r, t[:, None]), 1).reshape(12), c)))
    params = torch.stack(rows).float()
    lm = ops.morphable_reconstruct_params(params, model.mean, model.id_basis,
                                          model.exp_basis, model.landmarks68)
    fit, info = fit_landmarks(model, lm[..., :2], prior_id=1e-8, prior_exp=1e-8,
                              return_info=True)
    assert info["rms"].max() < 1e-3
    white = (fit - params) / model.param_std
    assert white[:, :8].abs().max() < 1e-3 and white[:, 12:].abs().max() < 1e-2
