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
    try:
        import tensorrt  # noqa: F401

        info["tensorrt"] = tensorrt.__version__
    except Exception:  # optional dependency
        info["tensorrt"] = None
    return info


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
