"""Compiled operators of pyface3d (namespace ``torch.ops.pyface3d``).

Every op has a pure-PyTorch reference in :mod:`pyface3d.ops.reference`.
"""
from ._lib import HAS_C, has_kernel  # noqa: F401
