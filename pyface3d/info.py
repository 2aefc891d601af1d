"""Run-time report of how pyface3d was built and what it can use here."""
import json
import platform

OPS = (
    "heatmap_encode",
    "heatmap_decode",
    "soft_argmax",
    "morphable_reconstruct",
    "wing_loss",
    "adaptive_wing_loss",
    "rasterize",
    "interpolate",
)


def build_info() -> dict:
    """Return a dict: compile-time configuration of ``pyface3d._C`` and the
    run-time environment (torch, CUDA devices, kernels registered per op)."""
    import torch

    from .ops import _lib

    info = {
        "pyface3d": __import__("pyface3d").__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else [],
        "extension_loaded": _lib.HAS_C,
    }
    if _lib.HAS_C:
        info["build"] = json.loads(_lib._C.build_info())
        kernels = {}
        for op in OPS:
            try:
                kernels[op] = [k for k in ("CPU", "CUDA") if _lib.has_kernel(op, k)]
            except RuntimeError:
                kernels[op] = []
        info["kernels"] = kernels
    else:
        info["build"] = None
        info["extension_error"] = str(_lib.C_IMPORT_ERROR)
    for mod in ("tensorrt", "onnxruntime", "onnx", "cv2"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # optional dependency
            info[mod] = None
    info["assets"] = _assets()
    try:
        from .models import list_models
        info["models"] = ", ".join(list_models())
    except Exception as e:  # noqa: BLE001 - report, do not fail
        info["models"] = f"unavailable ({e})"
    return info


def _assets() -> dict:
    """Where the run-time assets were found (nothing is built or downloaded here)."""
    import pathlib

    from .morphable.resolve import DEFAULT_ICT, _ict_sources, cache_dir
    from .pipeline.assets import find_asset
    from .pipeline.reconstructor import default_weights_path

    out = {}
    y = find_asset("yunet", required=False)
    out["yunet"] = str(y) if y else "not found (Haar cascade fallback)"
    w = default_weights_path()
    out["default_weights"] = w or "not installed"
    shipped = pathlib.Path(__file__).resolve().parent / "assets" / DEFAULT_ICT
    cached = cache_dir() / DEFAULT_ICT
    if shipped.is_file():
        out["morphable_ict"] = str(shipped)
    elif cached.is_file():
        out["morphable_ict"] = str(cached)
    else:
        src = next((s for s in _ict_sources() if s.is_file()), None)
        out["morphable_ict"] = (f"not built (will build from {src})" if src else
                                "not installed and no ICT-FaceKit source found")
    return out


def format_info(info: dict) -> str:
    lines = []
    for k, v in info.items():
        if isinstance(v, dict):
            lines.append(f"{k}:")
            for kk, vv in v.items():
                lines.append(f"  {kk:22s} {vv}")
        else:
            lines.append(f"{k:24s} {v}")
    return "\n".join(lines)
