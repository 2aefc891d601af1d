import os
import pathlib

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def shared_dir() -> pathlib.Path:
    """Development data: $PYFACE3D_SHARED, default ../shared beside the repo."""
    return pathlib.Path(os.environ.get("PYFACE3D_SHARED", ROOT.parent / "shared"))


HAS_CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    skip_cuda = pytest.mark.skip(reason="needs a CUDA device; none is available here")
    for item in items:
        if "cuda" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_cuda)


@pytest.fixture(params=DEVICES)
def device(request):
    """Parametrises a test over cpu and (when present) cuda."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def toy_mm():
    """A small synthetic MorphableModel (tests/train/toy_model.py), built once per session."""
    from tests.train.toy_model import toy_morphable

    return toy_morphable()
