"""Pure-PyTorch references of every pyface3d op.

They are the test oracle for the CPU and CUDA kernels and the fallback when the
compiled extension is missing. They are written with vectorised torch (no
Python loops over elements) so that the benchmarks compare against a fair
baseline. Each family lives in its own module; this one gathers them.
"""
