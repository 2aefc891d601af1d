"""GhostNet-style baseline of thesis table 6.2 (Han et al. 2020, width 1.0).

A Ghost module makes ``ceil(cout / ratio)`` "intrinsic" maps with a 1x1 conv and the rest
with a cheap depthwise 3x3 conv of them. A Ghost bottleneck is Ghost(expand, ReLU) ->
[dw k x k stride 2 + BN] -> [SE] -> Ghost(project, linear), plus a shortcut (identity, or
dw k x k stride s + BN + 1x1 + BN when the shape changes). Head: 1x1 conv to 960 + BN + ReLU,
global pool, 1x1 conv to 1280 + ReLU, dropout, FC -> P.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import check_image_batch, check_net_args, conv_bn_act, init_weights, make_divisible

# kernel, expansion channels, output channels, SE ratio, stride (GhostNet 1.0)
GHOSTNET_CFG = (
    (3, 16, 16, 0.0, 1),
    (3, 48, 24, 0.0, 2), (3, 72, 24, 0.0, 1),
    (5, 72, 40, 0.25, 2), (5, 120, 40, 0.25, 1),
    (3, 240, 80, 0.0, 2), (3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 184, 80, 0.0, 1),
    (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1),
    (5, 672, 160, 0.25, 2),
    (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1),
)


class GhostModule(nn.Module):
    """(B, cin, H, W) -> (B, cout, H, W) with ``ceil(cout/ratio)`` 1x1 maps + cheap dw maps."""

    def __init__(self, cin: int, cout: int, ratio: int = 2, dw_size: int = 3, relu: bool = True):
        super().__init__()
        self.cout = cout
        init = math.ceil(cout / ratio)
        new = init * (ratio - 1)
        act = "relu" if relu else "none"
        self.primary = conv_bn_act(cin, init, 1, act=act)
        self.cheap = conv_bn_act(init, new, dw_size, groups=init, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, :self.cout]


class GhostSE(nn.Module):
    """GhostNet's SE: pool, 1x1 reduce (bias) + ReLU, 1x1 expand (bias), hard-sigmoid."""

    def __init__(self, channels: int, ratio: float = 0.25):
        super().__init__()
        hidden = make_divisible(channels * ratio, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class GhostBottleneck(nn.Module):
    """Ghost bottleneck (see the module docstring)."""

    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, se_ratio: float):
        super().__init__()
        self.ghost1 = GhostModule(cin, mid, relu=True)
        self.dw = (nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                                 nn.BatchNorm2d(mid)) if stride > 1 else nn.Identity())
        self.se = GhostSE(mid, se_ratio) if se_ratio > 0 else nn.Identity()
        self.ghost2 = GhostModule(mid, cout, relu=False)
        if cin == cout and stride == 1:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ghost2(self.se(self.dw(self.ghost1(x)))) + self.shortcut(x)


class GhostNet(nn.Module):
    """GhostNet regressor.

    Args:
        num_params: outputs P.
        width: channel multiplier (1.0 in table 6.2).
        dropout: dropout before the FC.
        in_channels: image channels.
    Input (B, in_channels, H, W), H, W >= 32; output (B, num_params).
    """

    def __init__(self, num_params: int = 62, width: float = 1.0, dropout: float = 0.2,
                 in_channels: int = 3):
        super().__init__()
        check_net_args(num_params, dropout, width=width)
        self.in_channels = in_channels
        c = make_divisible(16 * width, 4)
        self.stem = conv_bn_act(in_channels, c, 3, 2, act="relu")
        blocks = []
        for k, exp, out, se, s in GHOSTNET_CFG:
            cout = make_divisible(out * width, 4)
            blocks.append(GhostBottleneck(c, make_divisible(exp * width, 4), cout, k, s, se))
            c = cout
        self.blocks = nn.Sequential(*blocks)
        last = make_divisible(960 * width, 4)
        self.conv_last = conv_bn_act(c, last, 1, act="relu")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Sequential(nn.Conv2d(last, 1280, 1), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(1280, num_params)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_params)."""
        check_image_batch(x, self.in_channels, 32)
        x = self.pool(self.conv_last(self.blocks(self.stem(x))))
        return self.fc(self.dropout(self.conv_head(x).flatten(1)))
