"""A restricted unpickler for pickled dicts of numpy arrays (3DDFA's ``.pkl`` files).

Only numpy's array/dtype/scalar reconstruction helpers and plain builtin containers and
scalars may be named by the pickle; any other global (``os.system``, ``subprocess.Popen``,
``builtins.eval``, ...) raises :class:`pickle.UnpicklingError` naming it, before anything
is called.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any, Union

__all__ = ["RestrictedUnpickler", "safe_load_pickle", "ALLOWED_GLOBALS"]

ALLOWED_GLOBALS = frozenset({
    # numpy arrays (protocol <= 4 and protocol 5), dtypes, numpy scalars; numpy 1.x and 2.x
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    # Python 3 writes bytes as _codecs.encode(str, 'latin1') under protocol 2
    ("_codecs", "encode"),
    # builtin containers and scalars
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"),
    ("builtins", "complex"), ("builtins", "bool"), ("builtins", "str"), ("builtins", "bytes"),
    ("builtins", "bytearray"), ("collections", "OrderedDict"),
})


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to unpickle global '{module}.{name}': only numpy arrays, dtypes, "
            f"scalars and builtin containers are allowed in model files")


def safe_load_pickle(source: Union[str, os.PathLike, bytes]) -> Any:
    """Unpickle a file (path) or bytes with :class:`RestrictedUnpickler`.

    ``encoding='latin1'`` so Python 2 numpy pickles load too.
    """
    if isinstance(source, (bytes, bytearray)):
        return RestrictedUnpickler(io.BytesIO(source), encoding="latin1").load()
    with open(source, "rb") as f:
        return RestrictedUnpickler(f, encoding="latin1").load()
