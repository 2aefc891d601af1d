"""MobileNet baselines of thesis table 6.2.

* :class:`MobileNetV1` - the 3DDFA / 3DDFA_V2 regressor shape: conv 3x3 stride 2 with
  ``32 * w`` channels + BN + ReLU, 13 depthwise-separable blocks (dw 3x3 + BN + ReLU, 1x1 + BN
  + ReLU), global average pool, FC -> P. ``widen_factor`` 1.0 is 3DDFA_V2's "mb1", 0.5 its
  "mb05". Submodule names (``conv1``, ``bn1``, ``dw2_1`` ... ``dw6`` with ``conv_dw``,
  ``bn_dw``, ``conv_sep``, ``bn_sep``, ``fc``) follow that repository's checkpoints, so
  its state_dicts load after :func:`strip_module_prefix` (their keys start with
  ``module.``).
* :class:`MobileNetV2` - inverted residuals with linear bottlenecks (Sandler et al. 2018),
  width multiplier 1.0 by default, last conv 1280, dropout, FC -> P.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Mapping

import torch
from torch import nn

from .layers import check_image_batch, check_net_args, conv_bn_act, init_weights, make_divisible

# (submodule name, output channels at widen_factor 1, stride)
_MBV1_BLOCKS = (
    ("dw2_1", 64, 1), ("dw2_2", 128, 2),
    ("dw3_1", 128, 1), ("dw3_2", 256, 2),
    ("dw4_1", 256, 1), ("dw4_2", 512, 2),
    ("dw5_1", 512, 1), ("dw5_2", 512, 1), ("dw5_3", 512, 1), ("dw5_4", 512, 1),
    ("dw5_5", 512, 1), ("dw5_6", 1024, 2),
    ("dw6", 1024, 1),
)


class DepthwiseSeparable(nn.Module):
    """dw 3x3 (stride) + BN + ReLU, then 1x1 + BN + ReLU: (B, cin, H, W) -> (B, cout, H/s, W/s)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv_dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn_dw = nn.BatchNorm2d(cin)
        self.conv_sep = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_dw(self.conv_dw(x)))
        return self.relu(self.bn_sep(self.conv_sep(x)))


class MobileNetV1(nn.Module):
    """3DDFA_V2-shaped MobileNetV1 regressor.

    Args:
        num_params: outputs P.
        widen_factor: channel multiplier w (channels are ``int(c * w)``).
        in_channels: image channels.
    Input (B, in_channels, H, W), H, W >= 32; output (B, num_params).
    """

    def __init__(self, num_params: int = 62, widen_factor: float = 1.0, in_channels: int = 3):
        super().__init__()
        check_net_args(num_params, widen_factor=widen_factor)
        self.in_channels = in_channels
        c = int(32 * widen_factor)
        self.conv1 = nn.Conv2d(in_channels, c, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        for name, base, stride in _MBV1_BLOCKS:
            cout = int(base * widen_factor)
            self.add_module(name, DepthwiseSeparable(c, cout, stride))
            c = cout
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_params)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_params)."""
        check_image_batch(x, self.in_channels, 32)
        x = self.relu(self.bn1(self.conv1(x)))
        for name, _, _ in _MBV1_BLOCKS:
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x).flatten(1))


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor],
                        prefix: str = "module.") -> Dict[str, torch.Tensor]:
    """Copy of ``state_dict`` with ``prefix`` removed from keys that start with it
    (DataParallel checkpoints such as 3DDFA_V2's ``mb1_120x120.pth``). Load the file
    with ``torch.load(path, map_location="cpu", weights_only=True)``."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v)
                       for k, v in state_dict.items())


def load_3ddfa_state_dict(model: nn.Module, checkpoint: Mapping) -> nn.Module:
    """Load a 3DDFA / 3DDFA_V2 MobileNetV1 checkpoint into ``model`` (strict).

    ``checkpoint``: the loaded file (a dict with a ``"state_dict"`` entry, as 3DDFA_V2's
    ``mb1_120x120.pth``) or the state_dict itself. ``module.`` prefixes are removed,
    ``fc_param.*`` (3DDFA v1 naming) is renamed ``fc.*``, and BatchNorm
    ``num_batches_tracked`` buffers that old checkpoints lack are kept from ``model``.
    Anything else missing or unexpected raises ``KeyError`` naming the keys.
    Load the file with ``torch.load(path, map_location="cpu", weights_only=True)``.
    """
    if not isinstance(checkpoint, Mapping):
        raise TypeError(f"checkpoint must be a mapping, got {type(checkpoint).__name__}")
    sd = checkpoint.get("state_dict", checkpoint)
    sd = strip_module_prefix(sd)
    sd = OrderedDict((("fc." + k[len("fc_param."):]) if k.startswith("fc_param.") else k, v)
                     for k, v in sd.items())
    own = model.state_dict()
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = v
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    if missing or unexpected:
        raise KeyError(f"checkpoint does not match the model: missing {missing[:8]}"
                       f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                       f"{' ...' if len(unexpected) > 8 else ''}")
    model.load_state_dict(sd, strict=True)
    return model


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand + BN + ReLU6] + dw 3x3 + BN + ReLU6 + 1x1 + BN,
    with a residual when stride 1 and cin == cout."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn_act(cin, hidden, 1, act="relu6")]
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


# expansion t, channels c, repeats n, first stride s
_MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    """MobileNetV2 regressor (width multiplier ``width``; last conv ``last_channels``).

    Input (B, in_channels, H, W), H, W >= 32; output (B, num_params).
    """

    def __init__(self, num_params: int = 62, width: float = 1.0, last_channels: int = 1280,
                 dropout: float = 0.2, in_channels: int = 3):
        super().__init__()
        check_net_args(num_params, dropout, width=width)
        self.in_channels = in_channels
        c = make_divisible(32 * width, 8)
        last = make_divisible(last_channels * max(1.0, width), 8)
        layers = [conv_bn_act(in_channels, c, 3, 2, act="relu6")]
        for t, ch, n, s in _MBV2_SETTINGS:
            cout = make_divisible(ch * width, 8)
            for i in range(n):
                layers.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        layers.append(conv_bn_act(c, last, 1, act="relu6"))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(last, num_params)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_params)."""
        check_image_batch(x, self.in_channels, 32)
        return self.fc(self.dropout(self.pool(self.features(x)).flatten(1)))
