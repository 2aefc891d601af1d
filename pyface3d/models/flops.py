"""Parameter and FLOP counters.

:func:`count_flops` counts multiply-accumulates (MACs) of ``nn.Conv2d`` and ``nn.Linear``
layers with forward hooks during one forward pass:

* Conv2d: ``Cout * Hout * Wout * (Cin / groups) * kh * kw`` per sample,
* Linear: ``in_features * out_features`` per output row,

summed over the batch. Biases, BatchNorm, activations, pooling, elementwise products
(attention gates) and channel shuffles are not counted. This is the convention of the
MobileNet/ShuffleNet/GhostNet papers, whose "FLOPs" are MACs; multiply by 2 for
floating-point operations.
"""
from __future__ import annotations

from typing import Dict, Sequence

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all, or those with ``requires_grad``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(m: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = m.kernel_size
    return out.numel() * (m.in_channels // m.groups) * kh * kw


def _linear_macs(m: nn.Linear, out: torch.Tensor) -> int:
    return (out.numel() // m.out_features) * m.in_features * m.out_features


def count_flops(model: nn.Module, input_size: Sequence[int] = (1, 3, 120, 120),
                by_layer: bool = False):
    """MACs of one forward pass of ``model`` on zeros of ``input_size`` (eval mode, no grad;
    the training flag is restored afterwards).

    Returns an int, or with ``by_layer=True`` a dict {qualified module name: MACs} (layers
    that ran, in order) - its values sum to the total.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if len(input_size) < 2 or any(not isinstance(s, int) or s <= 0 for s in input_size):
        raise ValueError(f"input_size must be a sequence of positive ints, got {input_size!r}")
    counts: Dict[str, int] = {}
    handles = []

    def hook_for(name, fn):
        def hook(mod, inp, out):
            counts[name] = counts.get(name, 0) + fn(mod, out)
        return hook

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(hook_for(name, _conv_macs)))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(hook_for(name, _linear_macs)))
    p = next(iter(model.parameters()), None)
    x = torch.zeros(tuple(input_size), device=p.device if p is not None else "cpu",
                    dtype=p.dtype if p is not None and p.is_floating_point() else torch.float32)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts if by_layer else sum(counts.values())
