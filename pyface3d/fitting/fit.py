"""Batched 3DMM fitting to 2D or 3D landmarks (scaled orthographic camera).

Model (3DDFA layout, :mod:`pyface3d.ops.morphable`)::

    x_k = P[:, :3] s_k + P[:, 3],   P = [f R | t] (3 x 4),   s_k = mean_k + A_k c

with ``c = [a_id, a_exp]``. 2D landmarks are the x, y rows of ``x_k`` (the model's projected
frame, eq. 6.2 of the thesis); the third row of ``P`` follows from the orthonormality of
``R`` (``r3 = r1 x r2``) and ``t_z`` is not observable (kept from ``init``, else
``param_mean[11]``).

Energy (per sample)::

    E = sum_k v_k ||x_k - l_k||^2 + lambda_id ||z_id||^2 + lambda_exp ||z_exp||^2,
    z = (c - param_mean[12:]) / param_std[12:]      (unit-variance coefficient units)

(``v_k`` the visibility weights; with Gaussian landmark noise of std ``sigma`` (model units)
the MAP estimate has ``lambda = sigma^2``.)

Gauss-Newton (``method="gauss-newton"``):
  1. initial pose: closed form on the current shape (the mean shape, or ``init``);
  2. a few alternations of (a) pose in closed form - 2D: the weighted affine-camera least
     squares fit, projected to the nearest scaled rotation (SVD of its 2x3 part,
     ``Q = U V^T``, ``f = mean singular value``), then the translation re-solved;
     3D: weighted Procrustes with scale (Umeyama) - and (b) the coefficients by linear
     least squares with the Tikhonov priors (batched ``torch.linalg.solve``);
  3. joint Levenberg-Marquardt-damped Gauss-Newton steps on ``(f, rotation increment
     (3, R <- R expm([w]x)), t, c)``, accepted per sample only when the energy decreases.

Residuals always come from the compiled op :func:`pyface3d.ops.morphable_reconstruct`
(on the landmark rows of the model, in float64). Everything is batched; the device follows
the inputs.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .. import ops
from ..losses._model import check_model, check_vertex_ids, num_params, num_vertices, subset_rows

__all__ = ["fit_landmarks", "fit_points", "fit_to_model", "pose_from_affine",
           "scaled_rotation_fit", "procrustes_fit"]

_DT = torch.float64


# ----------------------------------------------------------------------------- pose solvers
def _wsolve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched solve with a least-squares fallback for singular systems."""
    try:
        return torch.linalg.solve(a, b)
    except RuntimeError:  # singular: minimum-norm least squares
        return torch.linalg.lstsq(a.cpu(), b.cpu(), driver="gelsd").solution.to(a.device)


def scaled_rotation_fit(shape: torch.Tensor, points: torch.Tensor,
                        weights: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Closed-form scaled-orthographic pose from 2D points.

    Weighted affine camera ``M (2 x 4) = argmin sum_k w_k ||M [s_k; 1] - p_k||^2``; its 2x3
    part ``A = U S V^T`` is replaced by the nearest scaled rotation rows ``f Q``,
    ``Q = U V^T`` (orthonormal rows), ``f = (s1 + s2) / 2``; the translation is re-solved for
    that ``f Q``; ``r3 = q1 x q2``.

    Args:
        shape: (B, K, 3) pose-free model points. points: (B, K, 2). weights: (B, K) >= 0.

    Returns:
        ``fR (B, 3, 3)`` (third row ``f r3``) and ``t_xy (B, 2)``.
    """
    b, k, _ = shape.shape
    x = torch.cat((shape, torch.ones(b, k, 1, dtype=shape.dtype, device=shape.device)), 2)
    xw = x * weights[..., None]
    lhs = xw.transpose(1, 2) @ x                                   # (B, 4, 4)
    rhs = xw.transpose(1, 2) @ points                              # (B, 4, 2)
    m = _wsolve(lhs, rhs).transpose(1, 2)                          # (B, 2, 4)
    u, s, vh = torch.linalg.svd(m[:, :, :3], full_matrices=False)  # (B,2,2) (B,2) (B,2,3)
    q = u @ vh
    f = s.mean(dim=1)
    r3 = torch.linalg.cross(q[:, 0], q[:, 1], dim=-1)
    fr = f[:, None, None] * torch.cat((q, r3[:, None]), dim=1)
    wsum = weights.sum(1, keepdim=True)
    t = ((points - shape @ fr[:, :2].transpose(1, 2)) * weights[..., None]).sum(1) / wsum
    return fr, t


def procrustes_fit(shape: torch.Tensor, points: torch.Tensor,
                   weights: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weighted similarity Procrustes (Umeyama 1991): ``points ~ f R shape + t``.

    Args: shape, points (B, K, 3); weights (B, K) >= 0. Returns ``fR (B, 3, 3)``, ``t (B, 3)``.
    """
    wsum = weights.sum(1, keepdim=True)
    wn = (weights / wsum)[..., None]
    ms, mp = (shape * wn).sum(1), (points * wn).sum(1)
    cs, cp = shape - ms[:, None], points - mp[:, None]
    cov = (cp * wn).transpose(1, 2) @ cs                           # (B, 3, 3) = sum w p s^T
    u, sv, vh = torch.linalg.svd(cov)
    d = torch.ones_like(sv)
    d[:, 2] = torch.sign(torch.linalg.det(u @ vh))
    d[:, 2] = torch.where(d[:, 2] == 0, torch.ones_like(d[:, 2]), d[:, 2])
    r = u @ torch.diag_embed(d) @ vh
    var = ((cs * cs).sum(2, keepdim=True) * wn).sum((1, 2))
    f = (sv * d).sum(1) / var
    fr = f[:, None, None] * r
    t = mp - (fr @ ms[..., None])[..., 0]
    return fr, t


def pose_from_affine(fr: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) ``fR`` and (B, 3) ``t`` -> (B, 12) row-major ``[fR | t]``."""
    return torch.cat((fr, t[..., None]), dim=2).reshape(fr.shape[0], 12)


# ----------------------------------------------------------------------------- the fitter
class _Problem:
    """Landmark rows of the model in float64 plus the fitting data."""

    def __init__(self, model, vertex_ids, points, weights, prior_id, prior_exp):
        dev = points.device
        self.mean, self.idb, self.expb = subset_rows(model, vertex_ids, dev, _DT)
        self.ni, self.ne = self.idb.shape[1], self.expb.shape[1]
        self.kc = self.ni + self.ne
        self.k = self.mean.shape[0] // 3
        self.basis = torch.cat((self.idb, self.expb), 1).reshape(self.k, 3, self.kc)
        pm = model.param_mean.detach().to(dev, _DT)
        ps = model.param_std.detach().to(dev, _DT)
        self.param_mean, self.coef_mean, self.coef_std = pm, pm[12:], ps[12:]
        lam = torch.cat((torch.full((self.ni,), float(prior_id), dtype=_DT, device=dev),
                         torch.full((self.ne,), float(prior_exp), dtype=_DT, device=dev)))
        self.prior = lam / self.coef_std ** 2                       # (Kc,) diagonal
        self.points = points
        self.w = weights
        self.d = points.shape[2]
        self.eye = torch.zeros(points.shape[0], 3, 4, dtype=_DT, device=dev)
        self.eye[:, 0, 0] = self.eye[:, 1, 1] = self.eye[:, 2, 2] = 1.0

    def split(self, c):
        return c[:, :self.ni].contiguous(), c[:, self.ni:].contiguous()

    def shape(self, c):
        """(B, K, 3) pose-free shape (compiled op, identity pose)."""
        a, e = self.split(c)
        return ops.morphable_reconstruct(self.eye, a, e, self.mean, self.idb, self.expb)

    def project(self, fr, t, c):
        """(B, K, 3) posed points (compiled op)."""
        a, e = self.split(c)
        pose = torch.cat((fr, t[..., None]), 2).contiguous()
        return ops.morphable_reconstruct(pose, a, e, self.mean, self.idb, self.expb)

    def energy(self, fr, t, c):
        r = self.project(fr, t, c)[..., :self.d] - self.points
        data = ((r * r).sum(2) * self.w).sum(1)
        z = c - self.coef_mean
        return data + (self.prior * z * z).sum(1)

    def pose_step(self, c, t_full):
        s = self.shape(c)
        if self.d == 2:
            fr, txy = scaled_rotation_fit(s, self.points, self.w)
            t = torch.cat((txy, t_full[:, 2:]), 1)
        else:
            fr, t = procrustes_fit(s, self.points, self.w)
        return fr, t

    def shape_step(self, fr, t, c):
        """Exact minimiser over c for a fixed pose (linear least squares + priors)."""
        d = self.d
        x = self.project(fr, t, c)[..., :d]
        r = self.points - x                                          # (B, K, D) residual
        jac = torch.matmul(fr[:, None, :d], self.basis[None])   # (B, K, D, Kc)
        jac = jac.reshape(jac.shape[0], -1, self.kc)
        wv = self.w[..., None].expand(-1, -1, d).reshape(jac.shape[0], -1)
        jw = jac * wv[..., None]
        h = jw.transpose(1, 2) @ jac + torch.diag(self.prior)
        g = (jw.transpose(1, 2) @ r.reshape(r.shape[0], -1, 1))[..., 0] \
            - self.prior * (c - self.coef_mean)
        return c + _wsolve(h, g[..., None])[..., 0]

    def normal_equations(self, fr, t, c):
        """Gauss-Newton normal equations of the joint problem in
        ``(f, rotation increment w (3), t (D), c (Kc))``: returns ``H (B, n, n)`` (with the
        prior) and ``g (B, n)`` (minus the energy gradient / 2)."""
        d, b = self.d, c.shape[0]
        f = torch.linalg.matrix_norm(fr, ord=2)                      # scale (largest sv)
        rot = fr / f[:, None, None]
        s = self.shape(c)                                            # (B, K, 3)
        x = self.project(fr, t, c)[..., :d]
        r = (self.points - x).reshape(b, -1)                         # (B, K*D)
        j_f = (s @ rot.transpose(1, 2))[..., :d]                     # (B, K, D)
        # d(R expm([w]x) s)/dw at 0 = -R [s]x
        sx = torch.zeros(b, self.k, 3, 3, dtype=_DT, device=c.device)
        sx[..., 0, 1], sx[..., 0, 2] = -s[..., 2], s[..., 1]
        sx[..., 1, 0], sx[..., 1, 2] = s[..., 2], -s[..., 0]
        sx[..., 2, 0], sx[..., 2, 1] = -s[..., 1], s[..., 0]
        j_w = -torch.einsum("bij,bkjl->bkil", fr, sx)[:, :, :d]      # (B, K, D, 3)
        j_t = torch.eye(d, dtype=_DT, device=c.device).expand(b, self.k, d, d)
        j_c = torch.matmul(fr[:, None, :d], self.basis[None])   # (B, K, D, Kc)
        jac = torch.cat((j_f[..., None], j_w, j_t, j_c), 3).reshape(b, self.k * d, -1)
        wv = self.w[..., None].expand(-1, -1, d).reshape(b, -1)
        jw = jac * wv[..., None]
        h = jw.transpose(1, 2) @ jac
        off = 1 + 3 + d
        h[:, off:, off:] += torch.diag(self.prior)
        g = (jw.transpose(1, 2) @ r[..., None])[..., 0]
        g[:, off:] -= self.prior * (c - self.coef_mean)
        return h, g

    def gn_step(self, fr, t, c, damping):
        """One damped joint Gauss-Newton (Levenberg-Marquardt) step; returns the proposal."""
        d, b = self.d, c.shape[0]
        off = 1 + 3 + d
        f = torch.linalg.matrix_norm(fr, ord=2)
        rot = fr / f[:, None, None]
        h, g = self.normal_equations(fr, t, c)
        diag = torch.diagonal(h, dim1=1, dim2=2)
        h = h + torch.diag_embed(damping[:, None] * (diag + 1e-12))
        delta = _wsolve(h, g[..., None])[..., 0]
        df, dw, dt, dc = (delta[:, :1], delta[:, 1:4], delta[:, 4:off], delta[:, off:])
        rot_new = rot @ torch.linalg.matrix_exp(_skew(dw))
        fr_new = (f[:, None, None] + df[..., None]) * rot_new
        t_new = t.clone()
        t_new[:, :d] = t[:, :d] + dt
        return fr_new, t_new, c + dc


def _check_points(points, weights, who, min_visible, model_k=None):
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{who}: argument `landmarks` must be a tensor, got "
                        f"{type(points).__name__}")
    if points.dim() != 3 or points.shape[2] not in (2, 3):
        raise ValueError(f"{who}: argument `landmarks` must have shape (B, K, 2) or (B, K, 3), "
                         f"got {tuple(points.shape)}")
    if model_k is not None and points.shape[1] != model_k:
        raise ValueError(f"{who}: argument `landmarks` has {points.shape[1]} points, the "
                         f"vertex ids {model_k}")
    if not points.is_floating_point():
        raise TypeError(f"{who}: argument `landmarks` must be floating point, got {points.dtype}")
    b, k = points.shape[:2]
    if weights is None:
        w = torch.ones(b, k, dtype=_DT, device=points.device)
    else:
        w = torch.as_tensor(weights, device=points.device)
        if tuple(w.shape) != (b, k):
            raise ValueError(f"{who}: argument `visibility` must have shape ({b}, {k}), got "
                             f"{tuple(w.shape)}")
        w = w.to(_DT)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError(f"{who}: argument `visibility` must be finite and >= 0")
    p = points.detach().to(_DT)
    p = torch.where(w[..., None] > 0, p, torch.zeros_like(p))  # invisible values unused
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{who}: argument `landmarks` has non-finite visible points")
    if b:
        nvis = (w > 0).sum(1)
        if int(nvis.min()) < min_visible:
            i = int((nvis < min_visible).nonzero()[0])
            raise ValueError(f"{who}: sample {i} has {int(nvis[i])} points with positive "
                             f"weight in `visibility`; the pose fit needs >= {min_visible}")
    return p, w


def fit_points(model, vertex_ids: Optional[torch.Tensor], points: torch.Tensor,
               visibility: Optional[torch.Tensor] = None, n_iter: int = 10,
               prior_id: float = 1.0, prior_exp: float = 1.0,
               init: Optional[torch.Tensor] = None, method: str = "gauss-newton",
               n_alternations: int = 3, return_info: bool = False):
    """Fit the model so that its vertices ``vertex_ids`` match ``points``.

    Same as :func:`fit_landmarks` for any set of model vertices (``vertex_ids (K,)``; None =
    all vertices, then K = N).
    """
    who = "fit_points"
    check_model(model, who)
    if method not in ("gauss-newton", "lbfgs"):
        raise ValueError(f"{who}: argument `method` must be 'gauss-newton' or 'lbfgs', got "
                         f"{method!r}")
    if int(n_iter) < 0 or int(n_alternations) < 0:
        raise ValueError(f"{who}: arguments `n_iter` and `n_alternations` must be >= 0")
    for name, v in (("prior_id", prior_id), ("prior_exp", prior_exp)):
        if not (math.isfinite(float(v)) and float(v) >= 0):
            raise ValueError(f"{who}: argument `{name}` must be finite and >= 0, got {v}")
    n = num_vertices(model)
    if vertex_ids is not None:
        vertex_ids = check_vertex_ids(torch.as_tensor(vertex_ids), n, who)
    k = n if vertex_ids is None else vertex_ids.numel()
    d = points.shape[2] if isinstance(points, torch.Tensor) and points.dim() == 3 else 2
    pts, w = _check_points(points, visibility, who, 4 if d == 2 else 3, k)
    out_dtype = points.dtype
    b, dev = pts.shape[0], pts.device
    p_count = num_params(model)
    prob = _Problem(model, vertex_ids, pts, w, prior_id, prior_exp)

    if init is not None:
        init = torch.as_tensor(init)
        if init.shape != (b, p_count):
            raise ValueError(f"{who}: argument `init` must have shape ({b}, {p_count}), got "
                             f"{tuple(init.shape)}")
        init = init.detach().to(dev, _DT)
        c = init[:, 12:].clone()
        t = init[:, :12].reshape(b, 3, 4)[:, :, 3].clone()
        # nearest scaled rotation (polar decomposition, f = mean singular value)
        u, sv, vh = torch.linalg.svd(init[:, :12].reshape(b, 3, 4)[:, :, :3])
        dfix = torch.ones_like(sv)
        dfix[:, 2] = torch.where(torch.linalg.det(u @ vh) < 0, -1.0, 1.0)
        fr = sv.mean(1)[:, None, None] * (u @ torch.diag_embed(dfix) @ vh)
    else:
        c = prob.coef_mean.expand(b, -1).clone()
        t = prob.param_mean[[3, 7, 11]].expand(b, -1).clone()
        fr = None
    if b == 0:
        return torch.zeros(0, p_count, dtype=out_dtype, device=dev)

    if fr is None:
        fr, t = prob.pose_step(c, t)
    for _ in range(min(int(n_alternations), int(n_iter)) if method == "gauss-newton"
                   else int(n_alternations)):
        fr, t = prob.pose_step(c, t)
        c = prob.shape_step(fr, t, c)

    if method == "gauss-newton":
        energy = prob.energy(fr, t, c)
        damping = torch.full((b,), 1e-6, dtype=_DT, device=dev)
        for _ in range(int(n_iter) - min(int(n_alternations), int(n_iter))):
            fr2, t2, c2 = prob.gn_step(fr, t, c, damping)
            e2 = prob.energy(fr2, t2, c2)
            ok = torch.isfinite(e2) & (e2 <= energy)
            # stop when no sample can change its energy by more than 1e-10 (relative)
            converged = torch.isfinite(e2) & ((energy - e2).abs() <= 1e-10 * energy.abs()
                                              + 1e-300)
            fr = torch.where(ok[:, None, None], fr2, fr)
            t = torch.where(ok[:, None], t2, t)
            c = torch.where(ok[:, None], c2, c)
            energy = torch.where(ok, e2, energy)
            damping = torch.where(ok, (damping * 0.3).clamp_min(1e-12), damping * 10)
            if bool(converged.all()):
                break
    else:
        fr, t, c = _lbfgs(prob, fr, t, c, int(n_iter))

    params = torch.cat((pose_from_affine(fr, t), c), 1)
    if not return_info:
        return params.to(out_dtype)
    with torch.no_grad():
        r = prob.project(fr, t, c)[..., :d] - pts
        dist = r.norm(dim=2)
        rms = ((dist ** 2 * (w > 0)).sum(1) / (w > 0).sum(1)).sqrt()
    info = {"energy": prob.energy(fr, t, c), "rms": rms, "mean_error":
            (dist * (w > 0)).sum(1) / (w > 0).sum(1)}
    return params.to(out_dtype), info


def _skew(w: torch.Tensor) -> torch.Tensor:
    z = torch.zeros_like(w[:, 0])
    return torch.stack((torch.stack((z, -w[:, 2], w[:, 1]), 1),
                        torch.stack((w[:, 2], z, -w[:, 0]), 1),
                        torch.stack((-w[:, 1], w[:, 0], z), 1)), 1)


def _lbfgs(prob: _Problem, fr, t, c, n_iter: int):
    """L-BFGS (strong-Wolfe line search) on ``(f, rotation vector, t, c)`` around the start,
    each variable scaled by the square root of the Gauss-Newton Hessian diagonal there
    (Jacobi preconditioning); gradients through the compiled op."""
    d = prob.d
    b = c.shape[0]
    f0 = torch.linalg.matrix_norm(fr, ord=2)
    rot0 = fr / f0[:, None, None]
    h, _ = prob.normal_equations(fr, t, c)
    scale = torch.diagonal(h, dim1=1, dim2=2).clamp_min(1e-12).sqrt()   # (B, n)
    y = torch.zeros_like(scale, requires_grad=True)

    def unpack():
        theta = y / scale
        df, dw, dt, dc = theta[:, :1], theta[:, 1:4], theta[:, 4:4 + d], theta[:, 4 + d:]
        fr_ = (f0[:, None, None] + df[..., None]) * (rot0 @ torch.linalg.matrix_exp(_skew(dw)))
        t_ = torch.cat((t[:, :d] + dt, t[:, d:]), 1)
        return fr_, t_, c + dc

    opt = torch.optim.LBFGS([y], lr=1.0, max_iter=max(n_iter, 1), history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-18)

    # the energies are summed over the batch (samples are independent)
    def closure():
        opt.zero_grad()
        e = prob.energy(*unpack()).sum()
        e.backward()
        return e

    if n_iter > 0:
        opt.step(closure)
    with torch.no_grad():
        fr_, t_, c_ = unpack()
    return fr_.detach(), t_.detach(), c_.detach()


def fit_landmarks(model, landmarks: torch.Tensor, visibility: Optional[torch.Tensor] = None,
                  n_iter: int = 10, prior_id: float = 1.0, prior_exp: float = 1.0,
                  init: Optional[torch.Tensor] = None, method: str = "gauss-newton",
                  n_alternations: int = 3, return_info: bool = False):
    """Fit 3DMM parameters to 68 landmarks, batched (CPU or GPU: the device of ``landmarks``).

    Args:
        model: MorphableModel-like (``mean``, ``id_basis``, ``exp_basis``, ``landmarks68``,
            ``param_mean``, ``param_std``).
        landmarks: (B, 68, 2) landmarks in the model's projected frame (x, y of the posed
            vertices; 3DDFA: crop pixels with y up, i.e. before ``y = 120 - y``), or
            (B, 68, 3) 3D points (fits t_z too).
        visibility: optional (B, 68) weights >= 0 (0 = ignore the point; its coordinates may
            then be anything, even NaN). At least 4 (2D) / 3 (3D) positive weights per
            sample.
        n_iter: total iterations: the first ``n_alternations`` are pose/shape alternations,
            the rest joint Gauss-Newton (LM-damped) steps; for ``"lbfgs"``, ``n_iter`` L-BFGS
            iterations after ``n_alternations`` alternations.
        prior_id, prior_exp: Tikhonov weights on the whitened identity / expression
            coefficients (``lambda ||(c - param_mean) / param_std||^2``; ~ the landmark noise
            variance in model units^2). 0 disables a prior.
        init: optional (B, 12 + I + E) de-whitened starting parameters (pose and
            coefficients; its ``t_z`` is kept for 2D fits). Default: mean coefficients
            (``param_mean``) and a closed-form pose.
        method: ``"gauss-newton"`` (default) or ``"lbfgs"``.
        return_info: also return a dict with per-sample ``energy``, ``rms`` and
            ``mean_error`` (landmark distances over the visible points, model units).

    Returns:
        (B, 12 + I + E) de-whitened parameters in the dtype of ``landmarks`` (whiten with
        ``(p - param_mean) / param_std`` for network targets); with ``return_info`` a tuple
        ``(params, info)``.

    Raises:
        ValueError / TypeError naming the argument for bad shapes, weights or options.
    """
    check_model(model, "fit_landmarks")
    lm = getattr(model, "landmarks68", None)
    if lm is None:
        raise TypeError("fit_landmarks: argument `model` must have `landmarks68` (use "
                        "fit_points for other vertex sets)")
    return fit_points(model, torch.as_tensor(lm), landmarks, visibility, n_iter, prior_id,
                      prior_exp, init, method, n_alternations, return_info)


def fit_to_model(params_src: torch.Tensor, model_src, model_dst,
                 correspondence: Optional[torch.Tensor] = None, n_iter: int = 10,
                 prior_id: float = 1e-3, prior_exp: float = 1e-3, return_info: bool = False):
    """Convert parameter labels between morphable models (e.g. BFM labels -> ICT-FaceKit).

    The source model's 68 landmarks (and, if given, the source vertices of
    ``correspondence``) are reconstructed in 3D from ``params_src`` and the destination
    model is fitted to them with :func:`fit_points` (3D Procrustes + shape least squares +
    Gauss-Newton).

    Args:
        params_src: (B, P_src) de-whitened source parameters.
        model_src, model_dst: MorphableModel-like.
        correspondence: optional (C, 2) int64 pairs ``(src_vertex, dst_vertex)`` of a dense
            correspondence, added to the 68 landmark pairs.
        n_iter, prior_id, prior_exp: as in :func:`fit_landmarks` (weak priors by default:
            the targets are noise-free model points).
        return_info: also return the fit's info dict.

    Returns:
        (B, P_dst) de-whitened destination parameters (and info).
    """
    who = "fit_to_model"
    check_model(model_src, who, need_whitening=False)
    check_model(model_dst, who)
    if not isinstance(params_src, torch.Tensor) or params_src.dim() != 2 or \
            params_src.shape[1] != num_params(model_src):
        raise ValueError(f"{who}: argument `params_src` must have shape (B, "
                         f"{num_params(model_src)}), got "
                         f"{tuple(getattr(params_src, 'shape', ()))}")
    ns, nd = num_vertices(model_src), num_vertices(model_dst)
    src_ids = check_vertex_ids(torch.as_tensor(model_src.landmarks68), ns, who,
                               "model_src.landmarks68")
    dst_ids = check_vertex_ids(torch.as_tensor(model_dst.landmarks68), nd, who,
                               "model_dst.landmarks68")
    if correspondence is not None:
        corr = torch.as_tensor(correspondence)
        if corr.dim() != 2 or corr.shape[1] != 2:
            raise ValueError(f"{who}: argument `correspondence` must have shape (C, 2), got "
                             f"{tuple(corr.shape)}")
        src_ids = torch.cat((src_ids, check_vertex_ids(corr[:, 0], ns, who,
                                                       "correspondence[:, 0]")))
        dst_ids = torch.cat((dst_ids, check_vertex_ids(corr[:, 1], nd, who,
                                                       "correspondence[:, 1]")))
    dt = params_src.dtype
    with torch.no_grad():
        mean, idb, expb = subset_rows(model_src, src_ids, params_src.device, dt)
        target = ops.morphable_reconstruct_params(params_src.detach(), mean, idb, expb)
    return fit_points(model_dst, dst_ids, target, None, n_iter, prior_id, prior_exp,
                      return_info=return_info)
