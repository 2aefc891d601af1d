"""The thesis network (chapter 6, figures 6.7 and 6.8): a ShuffleNetV2-Plus style regressor of
the 62 (whitened) 3DMM parameters from a (B, 3, 120, 120) face crop.

Layout::

    stem      conv 3x3 stride 2 + BN + h-swish
    stages    4 stages of units; each stage starts with a stride-2 unit. Unit types
              (``arch``): "3", "5", "7" = ShuffleNet unit with a 3x3 / 5x5 / 7x7 depthwise
              kernel, "x" = Shuffle-Xception unit (three depthwise-separable convs with
              kernel ``xception_kernel``, 5 in the thesis)
    head      1x1 conv + BN + h-swish, global average pool, [SE], [FC + h-swish], dropout,
              FC -> P

Units follow ShuffleNetV2: a stride-1 unit splits the channels in half, runs the main branch
on one half, concatenates it with the untouched half and shuffles; a stride-2 unit runs a
main branch and a projection branch (depthwise k x k stride 2 + 1x1) on the full input and
concatenates them. The attention layer (SE by default) sits at the end of the main branch,
before the concatenation. Stages listed in ``relu_stages`` use ReLU, the others h-swish
(ShuffleNetV2+: ReLU in the first two stages).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from .layers import (SELayer, activation, channel_shuffle, check_image_batch, check_net_args,
                     init_weights, make_attention)

UNIT_KERNELS = {"3": 3, "5": 5, "7": 7}
UNIT_TYPES = ("3", "5", "7", "x")


def _se_kw(attention_kw: Optional[dict], attention: str) -> dict:
    """The SE keyword arguments (gate, reduction) of the units, reused by the last SE."""
    if attention != "se" or not attention_kw:
        return {}
    return {k: v for k, v in attention_kw.items() if k in ("gate", "reduction")}


class ShuffleUnit(nn.Module):
    """ShuffleNetV2(+) unit, (B, cin, H, W) -> (B, cout, H/stride, W/stride).

    Args:
        cin, cout: channels in/out. For stride 1, ``cin == cout`` (even).
        kind: "3", "5", "7" (ShuffleNet unit with that depthwise kernel) or "x"
            (Shuffle-Xception unit with ``xception_kernel``).
        stride: 1 or 2.
        act: activation of the unit ("relu" or "hswish").
        attention: "se", "sk", "ca" or "none", applied to the main branch output.
    """

    def __init__(self, cin: int, cout: int, kind: str, stride: int, act: str = "relu",
                 attention: str = "se", xception_kernel: int = 5,
                 attention_kw: Optional[dict] = None):
        super().__init__()
        if kind not in UNIT_TYPES:
            raise ValueError(f"unit kind must be one of {UNIT_TYPES}, got {kind!r}")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        if stride == 1 and (cin != cout or cin % 2):
            raise ValueError(f"a stride-1 unit needs cin == cout and even, got {cin}, {cout}")
        self.stride = stride
        inp = cin if stride == 2 else cin // 2      # channels entering the main branch
        out_main = cout - inp                       # channels the main branch produces
        mid = cout // 2
        if out_main <= 0:
            raise ValueError(f"cout ({cout}) must exceed the projected channels ({inp})")
        k = xception_kernel if kind == "x" else UNIT_KERNELS[kind]
        p = k // 2
        if kind == "x":
            layers = [
                nn.Conv2d(inp, inp, k, stride, p, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, mid, 1, bias=False), nn.BatchNorm2d(mid), activation(act),
                nn.Conv2d(mid, mid, k, 1, p, groups=mid, bias=False), nn.BatchNorm2d(mid),
                nn.Conv2d(mid, mid, 1, bias=False), nn.BatchNorm2d(mid), activation(act),
                nn.Conv2d(mid, mid, k, 1, p, groups=mid, bias=False), nn.BatchNorm2d(mid),
                nn.Conv2d(mid, out_main, 1, bias=False), nn.BatchNorm2d(out_main),
                activation(act),
            ]
        else:
            layers = [
                nn.Conv2d(inp, mid, 1, bias=False), nn.BatchNorm2d(mid), activation(act),
                nn.Conv2d(mid, mid, k, stride, p, groups=mid, bias=False), nn.BatchNorm2d(mid),
                nn.Conv2d(mid, out_main, 1, bias=False), nn.BatchNorm2d(out_main),
                activation(act),
            ]
        self.branch_main = nn.Sequential(*layers)
        self.attention = make_attention(attention, out_main, **(attention_kw or {}))
        if stride == 2:
            self.branch_proj = nn.Sequential(
                nn.Conv2d(cin, cin, k, 2, p, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, cin, 1, bias=False), nn.BatchNorm2d(cin), activation(act),
            )
        else:
            self.branch_proj = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            keep, x = x.chunk(2, 1)
        else:
            keep = self.branch_proj(x)
        out = torch.cat([keep, self.attention(self.branch_main(x))], 1)
        return channel_shuffle(out, 2)


class ShuffleNet3D(nn.Module):
    """Thesis network; see the module docstring and docs/models.md for the configuration.

    Args:
        num_params: outputs P (62 = 12 pose + 40 identity + 10 expression).
        arch: list of stages, each a string of unit types, e.g. ``["33x5", ...]``.
        channels: output channels of each stage (even), ``len(channels) == len(arch)``.
        stem_channels: stem conv width.
        head_channels: width of the final 1x1 conv.
        fc_hidden: width of the hidden FC after pooling (0: none).
        relu_stages: stage indices using ReLU; the others use h-swish.
        attention: "se" (thesis), "none", "sk" or "ca".
        attention_kw: keyword arguments of the attention layer.
        xception_kernel: depthwise kernel of the Shuffle-Xception units (thesis: 5).
        dropout: dropout before the last FC.
        last_se: an SE layer on the pooled head features (ShuffleNetV2+'s "LastSE").
        in_channels: image channels.
    Input (B, in_channels, H, W) float, H, W >= 32; output (B, num_params).
    """

    def __init__(self, num_params: int = 62, arch: Sequence[str] = ("33x5", "5533", "73735373",
                                                                     "75x7"),
                 channels: Sequence[int] = (64, 160, 320, 640), stem_channels: int = 16,
                 head_channels: int = 1024, fc_hidden: int = 0,
                 relu_stages: Sequence[int] = (0, 1), attention: str = "se",
                 attention_kw: Optional[Dict] = None, xception_kernel: int = 5,
                 dropout: float = 0.0, last_se: bool = True, in_channels: int = 3):
        super().__init__()
        check_net_args(num_params)
        if len(arch) != len(channels) or not arch:
            raise ValueError(f"arch and channels must have the same non-zero length, got "
                             f"{len(arch)} and {len(channels)}")
        for s, a in enumerate(arch):
            if not a or any(u not in UNIT_TYPES for u in a):
                raise ValueError(f"arch[{s}] = {a!r}: units must be among {UNIT_TYPES}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem_channels), nn.Hardswish(inplace=True))
        stages = []
        cin = stem_channels
        for s, (units, cout) in enumerate(zip(arch, channels)):
            act = "relu" if s in relu_stages else "hswish"
            blocks = []
            for i, kind in enumerate(units):
                blocks.append(ShuffleUnit(cin if i == 0 else cout, cout, kind, 2 if i == 0 else 1,
                                          act, attention, xception_kernel, attention_kw))
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.conv_last = nn.Sequential(nn.Conv2d(cin, head_channels, 1, bias=False),
                                       nn.BatchNorm2d(head_channels), nn.Hardswish(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.last_se = SELayer(head_channels, **_se_kw(attention_kw, attention)) if last_se \
            else nn.Identity()
        if fc_hidden:
            self.fc_hidden = nn.Sequential(nn.Linear(head_channels, fc_hidden, bias=False),
                                           nn.Hardswish(inplace=True))
            feat = fc_hidden
        else:
            self.fc_hidden = nn.Identity()
            feat = head_channels
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(feat, num_params)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal convs (fan-out), unit BN, small-normal FC (deterministic under
        ``torch.manual_seed``)."""
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image batch -> (B, num_params)."""
        check_image_batch(x, self.in_channels, 32)
        x = self.conv_last(self.stages(self.stem(x)))
        x = self.fc_hidden(self.last_se(self.pool(x)).flatten(1))
        return self.fc(self.dropout(x))
