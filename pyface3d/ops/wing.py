"""Wing and Adaptive Wing losses (compiled ops ``torch.ops.pyface3d.*``).

* :func:`wing_loss` (Feng et al., "Wing Loss for Robust Facial Landmark
  Localisation with Convolutional Neural Networks", CVPR 2018) on coordinates
  ``(B, N, D)``: landmarks (D = 2) or reconstructed vertices (D = 3).
* :func:`adaptive_wing_loss` (Wang et al., "Adaptive Wing Loss for Robust Face
  Alignment via Heatmap Regression", ICCV 2019) on heatmaps ``(B, K, H, W)``,
  weighted by the dilated-foreground map of :func:`adaptive_wing_weight_map`.

Both are single fused kernels forward and backward (CPU and CUDA). Reductions
``"mean"`` and ``"sum"`` are deterministic (fixed-order partial sums, no float
atomics); ``"mean"`` of an empty input is NaN, as ``torch.mean``. The backward
passes are first-order only (no double backward).
"""
from __future__ import annotations

import torch
from torch import nn

from . import _lib
from . import _reference_wing as _ref

__all__ = ["wing_loss", "adaptive_wing_loss", "adaptive_wing_weight_map", "WingLoss",
           "AdaptiveWingLoss"]


def wing_loss(pred: torch.Tensor, target: torch.Tensor, omega: float = 10.0,
              epsilon: float = 2.0, reduction: str = "mean") -> torch.Tensor:
    r"""Wing loss between ``pred`` and ``target``.

    With ``x = |pred - target|`` per element::

        w(x) = omega * ln(1 + x / epsilon)   if x < omega
               x - C                         otherwise,
        C    = omega - omega * ln(1 + omega / epsilon)

    (continuous at ``x = omega``). The gradient is
    ``sign(pred - target) * (omega / (epsilon + x) if x < omega else 1)`` with
    ``sign(0) = 0``; the gradient with respect to ``target`` is its negative.

    The thesis (chapter 6, eq. 6.6-6.7) applies it to reconstructed vertices
    with ``omega = 10``, ``epsilon = 2.1``.

    Args:
        pred: (B, N, D) float32 or float64 (any D; e.g. 2 for landmarks, 3 for vertices).
        target: (B, N, D), same dtype and device as ``pred``.
        omega: width of the non-linear part, > 0.
        epsilon: curvature of the non-linear part, > 0.
        reduction: ``"mean"`` (over all elements; NaN for empty inputs), ``"sum"``
            or ``"none"``.

    Returns:
        A scalar, or (B, N, D) for ``reduction="none"``.

    Raises:
        ValueError: bad shapes, ``omega``/``epsilon`` <= 0, unknown ``reduction``.
        TypeError: dtype not float32/float64 or ``pred``/``target`` dtypes differ.
        RuntimeError: ``pred`` and ``target`` on different devices.
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.wing_loss(pred, target, float(omega), float(epsilon),
                                            reduction)
    _lib.warn_fallback("wing.wing_loss")
    return _ref.wing_loss(pred, target, omega, epsilon, reduction)


def adaptive_wing_loss(pred: torch.Tensor, target: torch.Tensor, alpha: float = 2.1,
                       omega: float = 14.0, epsilon: float = 1.0, theta: float = 0.5,
                       weight: float = 10.0, threshold: float = 0.2, dilation: int = 3,
                       reduction: str = "mean") -> torch.Tensor:
    r"""Adaptive Wing loss on heatmaps.

    With ``y = target``, ``d = |y - pred|`` and ``e = alpha - y`` per pixel::

        l = omega * ln(1 + (d / epsilon)^e)                          if d < theta
            A * d - C                                                otherwise,
        A = omega / (1 + (theta/epsilon)^e) * e * (theta/epsilon)^(e-1) / epsilon
        C = theta * A - omega * ln(1 + (theta/epsilon)^e)

    and the loss is ``l * M`` with ``M = 1 + weight * D``, ``D`` the grey dilation of
    ``target > threshold`` by a ``dilation x dilation`` square window (per map,
    clipped at the border; see :func:`adaptive_wing_weight_map`). The kernel
    evaluates ``M`` on the fly (it is never materialised).

    Gradient: with respect to ``pred`` only. At ``d = 0`` the gradient is defined
    as 0 (the true derivative is 0 for ``e > 1`` and infinite for ``e < 1``, i.e.
    targets above ``alpha - 1``); ``pow(0, e - 1)`` is never evaluated, so no
    inf/NaN appears. Heatmap targets never need a gradient: the returned gradient
    for ``target`` is ``None`` (it is treated as a constant).

    Args:
        pred: (B, K, H, W) float32 or float64.
        target: (B, K, H, W), same dtype and device (values usually in [0, 1]).
        alpha: finite (paper: 2.1). omega, epsilon, theta: > 0 (paper: 14, 1, 0.5).
        weight: >= 0; 0 disables the weight map (paper: 10).
        threshold: foreground threshold on ``target`` (paper: 0.2).
        dilation: odd window size in [1, 1048575]; 1 means no dilation (paper: 3).
        reduction: ``"mean"`` (NaN for empty inputs), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or (B, K, H, W) for ``reduction="none"``.
    """
    if _lib.HAS_C:
        return torch.ops.pyface3d.adaptive_wing_loss(
            pred, target, float(alpha), float(omega), float(epsilon), float(theta),
            float(weight), float(threshold), _as_int(dilation), reduction)
    _lib.warn_fallback("wing.adaptive_wing_loss")
    return _ref.adaptive_wing_loss(pred, target, alpha, omega, epsilon, theta, weight,
                                   threshold, dilation, reduction)


def adaptive_wing_weight_map(target: torch.Tensor, weight: float = 10.0,
                             threshold: float = 0.2, dilation: int = 3) -> torch.Tensor:
    """The weight map ``M = 1 + weight * dilate(target > threshold)`` that
    :func:`adaptive_wing_loss` applies, materialised.

    Args:
        target: (B, K, H, W) float32 or float64.
        weight, threshold, dilation: as in :func:`adaptive_wing_loss`.

    Returns:
        (B, K, H, W), the dtype of ``target``.
    """
    return _ref.adaptive_wing_weight_map(target, weight, threshold, dilation)


def _as_int(v) -> int:
    if isinstance(v, bool) or int(v) != v:
        raise ValueError(f"pyface3d.adaptive_wing_loss: argument `dilation` must be an odd "
                         f"integer in [1, 1048575], got {v!r}")
    return int(v)


class WingLoss(nn.Module):
    """Module form of :func:`wing_loss`; ``forward(pred, target)`` with (B, N, D) inputs."""

    def __init__(self, omega: float = 10.0, epsilon: float = 2.0, reduction: str = "mean"):
        super().__init__()
        self.omega = float(omega)
        self.epsilon = float(epsilon)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return wing_loss(pred, target, self.omega, self.epsilon, self.reduction)

    def extra_repr(self) -> str:
        return f"omega={self.omega}, epsilon={self.epsilon}, reduction={self.reduction!r}"


class AdaptiveWingLoss(nn.Module):
    """Module form of :func:`adaptive_wing_loss`; ``forward(pred, target)`` with
    (B, K, H, W) heatmaps."""

    def __init__(self, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0,
                 theta: float = 0.5, weight: float = 10.0, threshold: float = 0.2,
                 dilation: int = 3, reduction: str = "mean"):
        super().__init__()
        self.alpha = float(alpha)
        self.omega = float(omega)
        self.epsilon = float(epsilon)
        self.theta = float(theta)
        self.weight = float(weight)
        self.threshold = float(threshold)
        self.dilation = int(dilation)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return adaptive_wing_loss(pred, target, self.alpha, self.omega, self.epsilon,
                                  self.theta, self.weight, self.threshold, self.dilation,
                                  self.reduction)

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, omega={self.omega}, epsilon={self.epsilon}, "
                f"theta={self.theta}, weight={self.weight}, threshold={self.threshold}, "
                f"dilation={self.dilation}, reduction={self.reduction!r}")


# ------------------------------------------------------------------ registrations
def _fake_forward(pred: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in ("mean", "sum", "none"):
        raise ValueError("pyface3d.wing: argument `reduction` must be one of 'mean', 'sum', "
                         f"'none', got {reduction!r}")
    if reduction == "none":
        return pred.new_empty(pred.shape)
    return pred.new_empty(())


if _lib.HAS_C:

    @torch.library.register_fake("pyface3d::wing_loss")
    def _wing_loss_fake(pred, target, omega=10.0, epsilon=2.0, reduction="mean"):
        torch._check(pred.dim() == 3, lambda: "pyface3d.wing_loss: `pred` must be (B, N, D)")
        torch._check(pred.shape == target.shape,
                     lambda: "pyface3d.wing_loss: `pred` and `target` shapes differ")
        return _fake_forward(pred, reduction)

    @torch.library.register_fake("pyface3d::_wing_loss_backward")
    def _wing_loss_backward_fake(grad_output, pred, target, omega, epsilon, reduction):
        return pred.new_empty(pred.shape)

    @torch.library.register_fake("pyface3d::adaptive_wing_loss")
    def _awing_loss_fake(pred, target, alpha=2.1, omega=14.0, epsilon=1.0, theta=0.5,
                         weight=10.0, threshold=0.2, dilation=3, reduction="mean"):
        torch._check(pred.dim() == 4,
                     lambda: "pyface3d.adaptive_wing_loss: `pred` must be (B, K, H, W)")
        torch._check(pred.shape == target.shape,
                     lambda: "pyface3d.adaptive_wing_loss: `pred` and `target` shapes differ")
        return _fake_forward(pred, reduction)

    @torch.library.register_fake("pyface3d::_adaptive_wing_loss_backward")
    def _awing_loss_backward_fake(grad_output, pred, target, alpha, omega, epsilon, theta,
                                  weight, threshold, dilation, reduction):
        return pred.new_empty(pred.shape)

    # -- autograd
    def _wing_setup_context(ctx, inputs, output):
        pred, target, omega, epsilon, reduction = inputs
        ctx.save_for_backward(pred, target)
        ctx.params = (omega, epsilon, reduction)

    def _wing_backward(ctx, grad):
        pred, target = ctx.saved_tensors
        omega, epsilon, reduction = ctx.params
        g = torch.ops.pyface3d._wing_loss_backward(grad, pred, target, omega, epsilon,
                                                   reduction)
        gp = g if ctx.needs_input_grad[0] else None
        gt = -g if ctx.needs_input_grad[1] else None
        return gp, gt, None, None, None

    torch.library.register_autograd("pyface3d::wing_loss", _wing_backward,
                                    setup_context=_wing_setup_context)

    def _awing_setup_context(ctx, inputs, output):
        pred, target = inputs[0], inputs[1]
        ctx.save_for_backward(pred, target)
        ctx.params = tuple(inputs[2:])

    def _awing_backward(ctx, grad):
        pred, target = ctx.saved_tensors
        g = None
        if ctx.needs_input_grad[0]:
            g = torch.ops.pyface3d._adaptive_wing_loss_backward(grad, pred, target,
                                                                *ctx.params)
        # target: treated as a constant (heatmap targets never need a gradient).
        return (g, None) + (None,) * len(ctx.params)

    torch.library.register_autograd("pyface3d::adaptive_wing_loss", _awing_backward,
                                    setup_context=_awing_setup_context)
