"""Networks of thesis chapter 6 (table 6.2) regressing 3DMM parameters from face crops.

Entry points: :func:`create`, :func:`list_models`, :func:`get_config`,
:func:`count_params`, :func:`count_flops` (multiply-accumulates). See docs/models.md.
"""
from .flops import count_flops, count_params
from .ghostnet import GhostNet
from .layers import CALayer, SELayer, SKLayer, channel_shuffle
from .mobilenet import MobileNetV1, MobileNetV2, load_3ddfa_state_dict, strip_module_prefix
from .registry import create, describe, get_config, list_models, register
from .shufflenet3d import ShuffleNet3D, ShuffleUnit

__all__ = ["create", "list_models", "get_config", "describe", "register", "count_params",
           "count_flops", "ShuffleNet3D", "ShuffleUnit", "MobileNetV1", "MobileNetV2",
           "GhostNet", "SELayer", "SKLayer", "CALayer", "channel_shuffle",
           "strip_module_prefix", "load_3ddfa_state_dict"]
