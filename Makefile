# pyface3d: `make test` and `make demo` are all a fresh machine needs.
#   make test       create .venv, install pinned deps, build pyface3d._C, run C++ (ctest) and Python tests
#   make demo       build, then run the pipeline (shipped weights) on a public-domain image and a clip -> demo_out/
#   make test-slow  the slow tests too
#   make bench      kernel benchmarks (each op beside its baseline); results in bench/README.md
#   make build      (re)build the extension in place
# PYFACE3D_WITH_CUDA=0 builds CPU-only; TORCH_CUDA_ARCH_LIST picks CUDA architectures.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2

CUDA_HOME ?= $(shell [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda)
ifneq ($(CUDA_HOME),)
export CUDA_HOME
export CUDACXX ?= $(CUDA_HOME)/bin/nvcc
endif
export MAX_JOBS ?= $(JOBS)

.PHONY: test test-slow cpp-test build demo bench clean venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# The extension builds in place (ninja: incremental); the editable install only
# registers the package and the `pyface3d` command.
build: venv $(VENV)/.editable
	$(PY) setup.py build_ext --inplace

$(VENV)/.editable: setup.py $(VENV)/.installed
	PYFACE3D_NO_EXTENSION=1 $(PY) -m pip install -q --no-build-isolation --no-deps -e . --config-settings editable_mode=compat
	touch $@

cpp-test:
	cmake -S . -B build-cmake -DCMAKE_BUILD_TYPE=Release
	cmake --build build-cmake -j $(JOBS)
	ctest --test-dir build-cmake --output-on-failure

test: build cpp-test
	$(PY) -m pytest -q

test-slow: build cpp-test
	$(PY) -m pytest -q -m "slow or not slow"

demo: build
	$(PY) -m pyface3d demo --out demo_out

bench: build
	$(PY) -m bench.run --json bench/results-cpu.json

clean:
	rm -rf build build-cmake pyface3d/*.so csrc/build_info.h *.egg-info demo_out
