"""Pure-PyTorch references of every pyface3d op.

They are the test oracle for the CPU and CUDA kernels and the fallback when the
compiled extension is missing. They are written with vectorised torch (no
Python loops over elements) so that the benchmarks compare against a fair
baseline. Each family lives in its own module; this one gathers them.
"""
from ._reference_heatmap import *  # noqa: E402,F401,F403
from ._reference_morphable import *  # noqa: E402,F401,F403
from ._reference_raster import *  # noqa: E402,F401,F403
from ._reference_wing import *  # noqa: E402,F401,F403
