"""pyface3d: face alignment and 3D face reconstruction with a compiled C++/CUDA core.

The compiled operators live in :mod:`pyface3d.ops` (also reachable as
``torch.ops.pyface3d.<name>`` once the extension is loaded).
"""
__version__ = "0.1.0"

from . import ops  # noqa: E402,F401  (loads pyface3d._C and registers the ops)
from .info import build_info  # noqa: E402,F401
