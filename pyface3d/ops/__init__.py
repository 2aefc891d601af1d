"""Compiled operators of pyface3d (namespace ``torch.ops.pyface3d``).

Every op has a CPU and a CUDA kernel, a fake (meta) kernel for
``torch.compile``/export, autograd where it is differentiable (the backward is
an op of its own), and a pure-PyTorch reference in
:mod:`pyface3d.ops.reference` used as the test oracle and as the fallback when
the extension is not built.

=========================  ====================================================
heatmap_encode             points (B,K,2) -> Gaussian heatmaps (B,K,H,W), weights
heatmap_decode             heatmaps -> coords (B,K,2), scores; none/quarter/dark
soft_argmax                differentiable integral decode
morphable_reconstruct      pose, coefficients, bases -> vertices (B,N,3)
morphable_reconstruct_params  the same from a (B, 12+I+E) parameter vector
wing_loss                  Wing loss on (B,N,D) landmarks / vertices
adaptive_wing_loss         adaptive Wing loss on heatmaps (dilated weight map)
rasterize                  Z-buffer: face index, barycentrics, depth
interpolate                vertex attributes at rasterized pixels
render_depth / render_pncc depth map / PNCC in one call; ncc_code
=========================  ====================================================
"""
from ._lib import HAS_C, has_kernel  # noqa: F401
from .heatmap import heatmap_decode, heatmap_encode, soft_argmax  # noqa: F401
from .morphable import morphable_reconstruct, morphable_reconstruct_params  # noqa: F401
from .raster import interpolate, ncc_code, rasterize, render_depth, render_pncc  # noqa: F401
from .wing import adaptive_wing_loss, wing_loss  # noqa: F401
