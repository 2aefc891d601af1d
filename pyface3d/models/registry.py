"""Registry of the networks of thesis table 6.2.

>>> from pyface3d import models
>>> models.list_models()
['ghostnet', 'mobilenet_v1', 'mobilenet_v1_x0.5', 'mobilenet_v2', 'shufflenet3d', ...]
>>> net = models.create("shufflenet3d", num_params=62, seed=0)   # (B,3,120,120) -> (B,62)

Each entry is a builder class plus a config dict of its keyword arguments; ``create`` merges
the keyword arguments it is given over that dict (unknown ones raise ``TypeError``).
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from .ghostnet import GhostNet
from .mobilenet import MobileNetV1, MobileNetV2
from .shufflenet3d import ShuffleNet3D

# ShuffleNetV2+ "Large" search result (stages of 4, 4, 8, 4 units; 3/5/7 = ShuffleNet unit
# with that depthwise kernel, x = Shuffle-Xception unit) and widths, SE in every unit.
SHUFFLENET3D_CONFIG = dict(
    arch=["33x5", "5533", "73755373", "75x7"],
    channels=[68, 168, 336, 672],
    stem_channels=16,
    head_channels=1280,
    fc_hidden=1280,
    relu_stages=[0, 1],
    attention="se",
    attention_kw={"reduction": 4, "gate": "sigmoid"},
    xception_kernel=5,
    last_se=True,
    dropout=0.0,
)


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """name, builder (called as ``builder(num_params=P, **config)``), config, description."""

    name: str
    builder: Callable[..., nn.Module]
    config: Dict
    description: str


_REGISTRY: Dict[str, ModelEntry] = {}


def register(name: str, builder: Callable[..., nn.Module], config: Dict,
             description: str = "") -> None:
    """Add a model to the registry (``name`` must be new)."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(name, builder, copy.deepcopy(config), description)


def list_models() -> List[str]:
    """Sorted names of the registered models."""
    return sorted(_REGISTRY)


def _entry(name: str) -> ModelEntry:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def get_config(name: str) -> Dict:
    """A copy of the config dict of model ``name``."""
    return copy.deepcopy(_entry(name).config)


def describe(name: str) -> str:
    """One-line description of model ``name``."""
    return _entry(name).description


def create(name: str, num_params: int = 62, seed: Optional[int] = None, **kw) -> nn.Module:
    """Build registry model ``name`` with ``num_params`` outputs.

    Args:
        name: one of :func:`list_models` (``KeyError`` listing them otherwise).
        num_params: outputs P (62 for 3DDFA's 12 + 40 + 10 parameters).
        seed: when given, the weights are initialised from ``torch.manual_seed(seed)``
            inside a forked RNG (the global RNG state is left untouched), so two calls with
            the same seed give identical weights.
        **kw: overrides of the entry's config (see :func:`get_config`).
    Returns the model (training mode); ``model.config`` holds the merged config and
    ``model.model_name`` the name.
    """
    entry = _entry(name)
    params = inspect.signature(entry.builder).parameters
    bad = sorted(k for k in kw if k not in params or k == "num_params")
    if bad:
        allowed = sorted(k for k in params if k != "num_params")
        raise TypeError(f"create({name!r}): unknown keyword argument(s) {bad}; "
                        f"allowed: {allowed}")
    config = copy.deepcopy(entry.config)
    config.update(kw)
    if seed is None:
        model = entry.builder(num_params=num_params, **config)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = entry.builder(num_params=num_params, **config)
    model.config = config
    model.model_name = name
    return model


register("shufflenet3d", ShuffleNet3D, SHUFFLENET3D_CONFIG,
         "thesis net: ShuffleNetV2+ units (3/5/7 kernels, Xception k5), SE in every unit")
register("shufflenet3d_nose", ShuffleNet3D,
         {**SHUFFLENET3D_CONFIG, "attention": "none", "attention_kw": None, "last_se": False},
         "thesis net without SE (table 6.2 'Without SE')")
register("shufflenet3d_sk", ShuffleNet3D,
         {**SHUFFLENET3D_CONFIG, "attention": "sk", "last_se": False,
          "attention_kw": {"dilations": [1, 2], "group_width": 8, "reduction": 16,
                           "min_dim": 32}},
         "thesis net with selective-kernel attention instead of SE ('With SK')")
register("shufflenet3d_ca", ShuffleNet3D,
         {**SHUFFLENET3D_CONFIG, "attention": "ca", "last_se": False,
          "attention_kw": {"reduction": 8, "min_dim": 8}},
         "thesis net with coordinate attention instead of SE ('With CA')")
register("mobilenet_v2", MobileNetV2, {"width": 1.0, "last_channels": 1280, "dropout": 0.2},
         "MobileNetV2 width 1.0")
register("ghostnet", GhostNet, {"width": 1.0, "dropout": 0.2}, "GhostNet width 1.0")
register("mobilenet_v1", MobileNetV1, {"widen_factor": 1.0},
         "MobileNetV1 x1.0 in 3DDFA_V2's shape ('mb1')")
register("mobilenet_v1_x2", MobileNetV1, {"widen_factor": 2.0},
         "MobileNetV1 x2.0 in 3DDFA_V2's shape ('mobilenet_2'; table 6.2 'MobileNet')")
register("mobilenet_v1_x0.5", MobileNetV1, {"widen_factor": 0.5},
         "MobileNetV1 x0.5 in 3DDFA_V2's shape ('mb05')")
