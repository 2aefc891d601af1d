"""Data augmentation by 3D face profiling (300W-LP style rotation of real images); see
docs/augment.md. Names are imported on first use, so that registering the CLI command
(:func:`add_parser`) does not load OpenCV and SciPy."""
import importlib

_NAMES = {
    "FaceProfiler": "profile", "ProfileConfig": "profile", "ProfiledView": "profile",
    "profile_face": "profile", "yaw_rotation": "profile", "yaw_schedule": "profile",
    "profile_folder": "batch", "read_landmark_records": "batch", "add_parser": "cli",
}
__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
