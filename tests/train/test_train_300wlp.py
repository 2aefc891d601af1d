"""End to end on the real 300W-LP format: .mat labels -> 62 BFM parameters -> augmentation
(incl. the parameter-aware flip) -> training -> validation, with the 68-keypoint rows of
3DDFA's BFM (the teacher folder) as the morphable model. Skips without ../shared."""
import math

import numpy as np
import pytest
import torch

from pyface3d.morphable import MorphableModel
from pyface3d.train import TrainConfig, train
from tests.conftest import shared_dir

TEACHER = shared_dir() / "assets" / "teachers" / "3ddfa_v2_mb05"
LP = shared_dir() / "data" / "fixtures" / "300w_lp"


@pytest.mark.skipif(not (TEACHER.is_dir() and LP.is_dir()),
                    reason="needs ../shared (PYFACE3D_SHARED): the 300W-LP fixture and the "
                           "3DDFA_V2 keypoint bases")
def test_train_on_300wlp_fixture(tmp_path):
    from pyface3d.data import load_3ddfa_keypoint_bases

    kb = load_3ddfa_keypoint_bases(TEACHER)
    mm = MorphableModel(
        mean=torch.tensor(kb.mean).float(), id_basis=torch.tensor(kb.id_basis).float(),
        exp_basis=torch.tensor(kb.exp_basis).float(),
        triangles=torch.zeros(0, 3, dtype=torch.int32), landmarks68=torch.arange(68),
        param_mean=torch.tensor(np.loadtxt(TEACHER / "param_mean_v2.txt")).float(),
        param_std=torch.tensor(np.loadtxt(TEACHER / "param_std_v2.txt")).float(),
        name="bfm-68-keypoints")
    mm.save(tmp_path / "bfm68.npz")
    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict(dict(
        out_dir=str(tmp_path / "run"), model="mobilenet_v1_x0.5",
        morphable=str(tmp_path / "bfm68.npz"), loss="l2", epochs=2, batch_size=1, workers=0,
        log_every=1, tensorboard=False,
        data=[{"type": "300w_lp", "root": str(LP), "augment": True}],
        val={"type": "300w_lp", "root": str(LP)}))
    res = train(cfg, device="cpu", progress=False)
    assert res["steps"] == 2 and math.isfinite(res["final_loss"])
    # the untrained network is far off, but the validation (68-point NME against the
    # fixture's pt2d) is a sane, finite number
    assert 0 < res["val_nme"] < 1
    assert (tmp_path / "run" / "best.pt").exists()
