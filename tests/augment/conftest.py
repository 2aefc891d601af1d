import numpy as np
import pytest

from pyface3d.augment import FaceProfiler

from .synth import make_model, make_params, render_scene

ROI = np.array([0.0, 0.0, 160.0, 160.0])


@pytest.fixture(scope="session")
def synth_model():
    return make_model()


@pytest.fixture(scope="session")
def synth_profiler(synth_model):
    return FaceProfiler(synth_model)


@pytest.fixture(scope="session")
def synth_scene(synth_model):
    """(image, params, roi, landmarks) of a synthetic face at yaw 10, pitch 5, roll -4."""
    p = make_params(synth_model, yaw=10.0)
    img, mask, depth, vi = render_scene(synth_model, p, ROI)
    lm = vi[synth_model.landmarks68.numpy(), :2]
    return img, p, ROI.copy(), lm
