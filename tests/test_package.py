"""The package as a whole: extension loaded, ops registered, build info, CLI."""
import json
import subprocess
import sys

import pytest
import torch

import pyface3d
from pyface3d import ops
from pyface3d.info import OPS, build_info

PUBLIC = ["heatmap_encode", "heatmap_decode", "soft_argmax", "morphable_reconstruct",
          "morphable_reconstruct_params", "wing_loss", "adaptive_wing_loss", "rasterize",
          "interpolate", "render_depth", "render_pncc", "ncc_code"]
BACKWARD = ["_soft_argmax_backward", "_morphable_reconstruct_backward", "_wing_loss_backward",
            "_adaptive_wing_loss_backward", "_interpolate_backward"]


def test_extension_is_built():
    assert ops.HAS_C, "pyface3d._C failed to import; run `make build`"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_python_names(name):
    fn = getattr(ops, name)
    assert callable(fn)
    assert fn.__doc__ and len(fn.__doc__) > 40, f"{name} needs a docstring with shapes"


@pytest.mark.parametrize("name", list(OPS) + BACKWARD)
def test_torch_ops_registered_with_cpu_kernel(name):
    assert hasattr(torch.ops.pyface3d, name)
    assert ops.has_kernel(name, "CPU")


@pytest.mark.parametrize("name", list(OPS) + BACKWARD)
def test_cuda_build_registers_cuda_kernels(name):
    info = build_info()
    if not info["build"]["with_cuda"]:
        pytest.skip("this build is CPU-only (PYFACE3D_WITH_CUDA=0 or no nvcc)")
    assert ops.has_kernel(name, "CUDA"), f"pyface3d::{name} has no CUDA kernel in a CUDA build"


def test_build_info_reports_configuration():
    info = build_info()
    b = info["build"]
    assert b["torch_version"].split("+")[0] == torch.__version__.split("+")[0]
    assert isinstance(b["with_cuda"], bool)
    if b["with_cuda"]:
        assert b["cuda_arch_list"]
    assert set(info["kernels"]) == set(OPS)
    assert all("CPU" in v for v in info["kernels"].values())


def test_cli_info_json():
    out = subprocess.run([sys.executable, "-m", "pyface3d", "info", "--json"], check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out)
    assert info["pyface3d"] == pyface3d.__version__
    assert info["extension_loaded"] is True


def test_reference_module_has_every_op():
    from pyface3d.ops import reference

    for name in ["heatmap_encode", "heatmap_decode", "soft_argmax", "morphable_reconstruct",
                 "wing_loss", "adaptive_wing_loss", "rasterize", "interpolate"]:
        assert callable(getattr(reference, name)), name
