import numpy as np
import pytest

from pyface3d.pipeline.backends import Backend
from pyface3d.pipeline.reconstructor import FaceReconstructor, MorphableHead
from tests.conftest import shared_dir


class ConstBackend(Backend):
    """Returns the same whitened output for every crop (zeros = the mean face at the mean
    pose, centred in the crop); counts calls and batch sizes."""
    name = "const"

    def __init__(self, value=None, P=None):
        self.value = value
        self.P = P
        self.batches = []

    def __call__(self, crops):
        self.batches.append(len(crops))
        out = np.zeros((len(crops), self.P), np.float32)
        if self.value is not None:
            out[:] = self.value
        return out


@pytest.fixture
def toy_rec(toy_mm):
    from pyface3d.pipeline.detect import BoxesDetector
    be = ConstBackend(P=toy_mm.num_params)
    return FaceReconstructor(be, MorphableHead(toy_mm),
                             detector=BoxesDetector([[200, 150, 320, 300, 0.9]]))


def teacher_dir():
    d = shared_dir() / "assets" / "teachers" / "3ddfa_v2_mb05"
    if not d.is_dir():
        pytest.skip(f"needs the 3DDFA_V2 teacher in {d} (PYFACE3D_SHARED)")
    return d


def lfpw_images(n=10):
    import glob
    d = shared_dir() / "data" / "300w" / "dev" / "lfpw_test"
    files = sorted(glob.glob(str(d / "*.jpg")))[:n]
    if not files:
        pytest.skip(f"needs 300W dev images in {d} (PYFACE3D_SHARED)")
    return files


@pytest.fixture(scope="session")
def teacher_rec():
    from pyface3d.pipeline import FaceReconstructor as FR
    yunet = shared_dir() / "assets" / "detectors" / "yunet_n_320_320.onnx"
    if not yunet.is_file():
        pytest.skip("needs the YuNet model (PYFACE3D_SHARED)")
    return FR.from_teacher(teacher_dir(), detector=str(yunet))


def consistent_value(mm):
    """Whitened output whose face, re-cropped by 3DDFA_V2's landmark rule, gives back the
    same crop (a fixed point of tracking: what a good network does on a still face)."""
    import torch
    from pyface3d.data.roi import roi_from_landmarks
    p = mm.param_mean.double().clone()
    lm = mm.reconstruct(p[None].float(), landmarks_only=True)[0].double().numpy()
    uv = np.stack([lm[:, 0] - 1, 120 - lm[:, 1]], 1)
    r = roi_from_landmarks(uv)
    a = 120.0 / (r[2] - r[0])
    c_model = np.array([(r[0] + r[2]) / 2 + 1, 120 - (r[1] + r[3]) / 2])
    P = p[:12].reshape(3, 4).clone()
    P[:, :3] *= a
    P[0, 3] = a * (P[0, 3] - c_model[0]) + 61.0
    P[1, 3] = a * (P[1, 3] - c_model[1]) + 60.0
    P[2, 3] *= a
    p[:12] = P.reshape(-1)
    return ((p - mm.param_mean.double()) / mm.param_std.double()).float().numpy()
