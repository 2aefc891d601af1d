"""Fixtures of the deploy tests: a small morphable model (no ../shared needed), networks
with BatchNorm statistics set from noise (so outputs are not ~0), exported files."""
import pytest
import torch

from pyface3d import models
from pyface3d.deploy import calibrate_batchnorm


@pytest.fixture(scope="session")
def toy_mm_path(toy_mm, tmp_path_factory):
    p = tmp_path_factory.mktemp("mm") / "toy.npz"
    toy_mm.save(p)
    return p


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_net(toy_mm, name="mobilenet_v1_x0.5", seed=0):
    """A registry network sized for ``toy_mm`` with realistic activations."""
    return calibrate_batchnorm(models.create(name, num_params=toy_mm.num_params, seed=seed),
                               batches=2, batch_size=4)
