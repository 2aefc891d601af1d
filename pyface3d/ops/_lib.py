"""Loads the compiled extension ``pyface3d._C``.

``HAS_C`` tells whether the compiled ops are available. When the extension is
missing (a source checkout that was never built), the Python functions in
:mod:`pyface3d.ops` fall back to the pure-PyTorch references in
:mod:`pyface3d.ops.reference` and warn once; ``torch.ops.pyface3d.*`` is then
unavailable.
"""
import warnings

import torch  # noqa: F401  (loads libc10/libtorch, which _C links against)

try:
    from pyface3d import _C  # noqa: F401  (registers torch.ops.pyface3d.*)

    HAS_C = True
    C_IMPORT_ERROR = None
except ImportError as e:  # pragma: no cover - exercised only in unbuilt checkouts
    _C = None
    HAS_C = False
    C_IMPORT_ERROR = e

_warned = False


def warn_fallback(name: str) -> None:
    """Warn once that ``name`` runs on the slow pure-PyTorch reference."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            f"pyface3d._C is not built ({C_IMPORT_ERROR}); pyface3d.ops.{name} and the other ops "
            "run on the slow pure-PyTorch reference. Build it with `pip install "
            "--no-build-isolation -e .` (or `make build`).",
            RuntimeWarning,
            stacklevel=3,
        )


def has_kernel(op: str, dispatch_key: str) -> bool:
    """True when ``pyface3d::<op>`` has a kernel registered for ``dispatch_key``."""
    import torch

    if not HAS_C:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"pyface3d::{op}", dispatch_key)
