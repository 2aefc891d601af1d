"""Building blocks shared by the networks of :mod:`pyface3d.models`.

Attention modules (all map ``(B, C, H, W) -> (B, C, H, W)``):

* :class:`SELayer` - squeeze-and-excitation (Hu et al. 2018): global average pool, two
  fully connected layers (1x1 convolutions) forming a ``C -> C/r -> C`` bottleneck, a gate
  in ``[0, 1]`` (sigmoid by default, as thesis section 6.2.1 describes) that rescales the
  channels.
* :class:`SKLayer` - selective kernel (Li et al. 2019): parallel grouped convolutions with
  different kernel sizes, fused by a softmax over the branches computed from the pooled sum.
* :class:`CALayer` - coordinate attention (Hou et al. 2021): pooling along H and along W,
  a shared 1x1 bottleneck, then one gate per direction.

:func:`make_attention` builds one of them (or nothing) from a name.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

ATTENTIONS = ("se", "sk", "ca", "none")


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_net_args(num_params, dropout=None, **positive) -> None:
    """Constructor checks shared by the networks: ``num_params`` a positive int,
    ``dropout`` in [0, 1) when given, every keyword of ``positive`` (width, ...) > 0."""
    if isinstance(num_params, bool) or not isinstance(num_params, int) or num_params <= 0:
        raise ValueError(f"num_params must be a positive int, got {num_params!r}")
    for name, v in positive.items():
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v!r}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convs (fan-out), unit BN, small-normal FC, zero biases
    (deterministic under ``torch.manual_seed``)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def make_divisible(v: float, divisor: int = 4, min_value: Optional[int] = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (at least ``min_value``), never
    going below 90% of ``v`` (the MobileNet/GhostNet rounding rule)."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def activation(name: str) -> nn.Module:
    """``"relu"``, ``"hswish"`` (x * ReLU6(x + 3) / 6), ``"relu6"`` or ``"none"``."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"activation must be one of relu, hswish, relu6, none; got {name!r}")


def gate(name: str) -> nn.Module:
    """Attention gate: ``"sigmoid"`` or ``"hsigmoid"`` (ReLU6(x + 3) / 6)."""
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "hsigmoid":
        return nn.Hardsigmoid()
    raise ValueError(f"gate must be 'sigmoid' or 'hsigmoid', got {name!r}")


def conv_bn_act(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
                act: str = "relu") -> nn.Sequential:
    """Conv2d (no bias, 'same' padding for odd k) + BatchNorm2d + activation."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        activation(act),
    )


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """ShuffleNet channel shuffle of ``x`` (B, C, H, W): view the channels as
    (groups, C/groups), transpose, flatten. ``C`` must be divisible by ``groups``."""
    b, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: channels ({c}) not divisible by groups ({groups})")
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class SELayer(nn.Module):
    """Squeeze-and-excitation on (B, C, H, W).

    Args:
        channels: C.
        reduction: bottleneck ratio r (hidden width ``max(8, C // r)``).
        gate: "sigmoid" (thesis) or "hsigmoid" (ShuffleNetV2+/MobileNetV3 style).
    """

    def __init__(self, channels: int, reduction: int = 4, gate: str = "sigmoid"):
        super().__init__()
        _check_positive_int("channels", channels)
        _check_positive_int("reduction", reduction)
        hidden = max(8, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = globals()["gate"](gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))
        return x * w


class SKLayer(nn.Module):
    """Selective-kernel attention on (B, C, H, W) (same shape out).

    Branch ``i``: grouped 3x3 conv with dilation ``dilations[i]`` (receptive field
    ``2 * d + 1``; SKNet's "5x5 as a dilated 3x3") and ``C / group_width`` groups, + BN +
    ReLU. The
    branch outputs are summed, pooled and squeezed to ``d = max(C // reduction, min_dim)``
    (FC + BN + ReLU); one FC per branch gives logits, softmax across branches gives the
    weights of the weighted sum.
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2), group_width: int = 8,
                 reduction: int = 16, min_dim: int = 32):
        super().__init__()
        _check_positive_int("channels", channels)
        _check_positive_int("group_width", group_width)
        _check_positive_int("reduction", reduction)
        if len(dilations) < 2 or any(not isinstance(d, int) or d <= 0 for d in dilations):
            raise ValueError(f"dilations must hold at least two positive ints, got {dilations!r}")
        groups = max(1, channels // group_width)
        while channels % groups:
            groups -= 1
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, 1, d, dilation=d, groups=groups,
                                    bias=False),
                          nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            for d in dilations)
        d = max(channels // reduction, min_dim)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = conv_bn_act(channels, d, 1, act="relu")
        self.select = nn.Conv2d(d, channels * len(dilations), 1)
        self.num_branches = len(dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = torch.stack([br(x) for br in self.branches], 1)  # (B, M, C, H, W)
        z = self.squeeze(self.pool(feats.sum(1)))                 # (B, d, 1, 1)
        b, m, c = feats.shape[:3]
        a = self.select(z).view(b, m, c, 1, 1).softmax(1)
        return (feats * a).sum(1)


class CALayer(nn.Module):
    """Coordinate attention on (B, C, H, W) (same shape out).

    ``x`` is pooled to (B, C, H, 1) and (B, C, 1, W); both go through a shared 1x1 conv to
    ``mip = max(min_dim, C // reduction)`` + BN + h-swish, then separate 1x1 convs + sigmoid
    give the gates ``a_h`` (B, C, H, 1) and ``a_w`` (B, C, 1, W); out = x * a_h * a_w.
    """

    def __init__(self, channels: int, reduction: int = 32, min_dim: int = 8):
        super().__init__()
        _check_positive_int("channels", channels)
        _check_positive_int("reduction", reduction)
        mip = max(min_dim, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, 1)
        self.bn1 = nn.BatchNorm2d(mip)
        self.act = nn.Hardswish(inplace=True)
        self.conv_h = nn.Conv2d(mip, channels, 1)
        self.conv_w = nn.Conv2d(mip, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        xh = x.mean(3, keepdim=True)                     # (B, C, H, 1)
        xw = x.mean(2, keepdim=True).transpose(2, 3)     # (B, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([xh, xw], 2))))
        yh, yw = torch.split(y, [h, w], 2)
        a_h = torch.sigmoid(self.conv_h(yh))
        a_w = torch.sigmoid(self.conv_w(yw.transpose(2, 3)))
        return x * a_h * a_w


def make_attention(kind: str, channels: int, **kw) -> nn.Module:
    """``kind`` in :data:`ATTENTIONS`: "se", "sk", "ca" or "none" (identity)."""
    if kind == "se":
        return SELayer(channels, **kw)
    if kind == "sk":
        return SKLayer(channels, **kw)
    if kind == "ca":
        return CALayer(channels, **kw)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}; got {kind!r}")


def check_image_batch(x: torch.Tensor, in_channels: int, min_size: int = 16) -> None:
    """Raise a clear error unless ``x`` is a floating (B, in_channels, H, W) tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"x must have shape (B, {in_channels}, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise ValueError(f"x is too small: H and W must be >= {min_size}, got {tuple(x.shape)}")
