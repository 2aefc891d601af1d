"""Teachers: the MediaPipe worker (needs $PYFACE3D_MEDIAPIPE_PYTHON) and the mb05 cache."""
import ast
import os
import subprocess

import cv2
import numpy as np
import pytest

from pyface3d.labels import teachers
from pyface3d.labels.teachers import MEDIAPIPE_ENV, WORKER, lookup, mediapipe_python, run_mb05
from tests.conftest import shared_dir


def test_worker_imports_only_allowed_modules():
    tree = ast.parse(open(WORKER).read())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            mods.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            pytest.fail("the worker must not use relative imports")
    assert mods <= {"__future__", "argparse", "os", "sys", "time", "numpy", "cv2", "mediapipe"}


def test_mediapipe_python_errors(monkeypatch, tmp_path):
    monkeypatch.delenv(MEDIAPIPE_ENV, raising=False)
    with pytest.raises(RuntimeError, match="(?s)PYFACE3D_MEDIAPIPE_PYTHON is not set.*venv"):
        mediapipe_python()
    monkeypatch.setenv(MEDIAPIPE_ENV, str(tmp_path / "nope"))
    with pytest.raises(RuntimeError, match="not an executable"):
        mediapipe_python()
    fake = tmp_path / "py"
    fake.write_text("#!/bin/sh\necho 'No module named mediapipe' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(MEDIAPIPE_ENV, str(fake))
    with pytest.raises(RuntimeError, match="(?s)cannot import mediapipe.*pip install mediapipe"):
        mediapipe_python()


def _mp_python():
    py = os.environ.get(MEDIAPIPE_ENV)
    if not py:
        pytest.skip(f"${MEDIAPIPE_ENV} is not set (a venv with mediapipe==0.10.21)")
    try:
        return mediapipe_python(py)
    except RuntimeError as e:
        pytest.skip(f"${MEDIAPIPE_ENV} is not usable: {e}")


def test_worker_runs_on_one_image(tmp_path):
    py = _mp_python()
    img = shared_dir() / "data" / "fixtures" / "300w" / "image_0010.png"
    if not img.is_file():
        pytest.skip(f"needs the 300W fixture {img} ($PYFACE3D_SHARED)")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
    out = tmp_path / "mp.npz"
    res = teachers.run_mediapipe([str(img), str(blank)], str(out), python=py, progress=False)
    i = lookup(res, [os.path.abspath(img), os.path.abspath(blank)])
    assert res["found"][i].tolist() == [True, False]
    lm = res["landmarks"][i[0]]
    assert lm.shape == (468, 3) and np.isnan(res["landmarks"][i[1]]).all()
    h, w = cv2.imread(str(img)).shape[:2]
    assert (lm[:, 0] > 0).all() and (lm[:, 0] < w).all() and (lm[:, 1] < h).all()
    # the face is where the hand labels are
    from pyface3d.data import read_pts
    gt = read_pts(str(img.with_suffix(".pts"))) - 1
    assert np.linalg.norm(lm[:, :2].mean(0) - gt.mean(0)) < 0.1 * np.ptp(gt[:, 0])
    # resumable: nothing left to do, no subprocess needed
    mt = os.path.getmtime(out)
    teachers.run_mediapipe([str(img)], str(out), python="/nonexistent", progress=False)
    assert os.path.getmtime(out) == mt


class _FakeDetector:
    def detect(self, img):
        return np.array([[10, 10, 50, 50, 0.9], [0, 0, 80, 80, 0.88], [0, 0, 90, 90, 0.5]])

    def roi(self, boxes):
        return np.asarray(boxes, float)[:, :4]


class _Face:
    def __init__(self, lm):
        self.landmarks, self.pose = lm, np.array([1.0, 2.0, 3.0])


class _FakeRec:
    """Duck-typed FaceReconstructor: landmarks = a grid inside the ROI."""
    def __init__(self):
        self.detector, self.calls = _FakeDetector(), []

    def detect(self, img):
        return self.detector.detect(img)

    def _lm(self, roi):
        g = np.stack(np.meshgrid(np.linspace(0.2, 0.8, 17), np.linspace(0.2, 0.8, 4)), -1)
        xy = roi[:2] + g.reshape(-1, 2)[:68] * (roi[2:] - roi[:2])
        return np.concatenate([xy, np.zeros((68, 1))], 1)

    def reconstruct_rois(self, img, rois, boxes):
        self.calls.append(("rois", np.asarray(rois)[0].copy()))
        return [_Face(self._lm(np.asarray(rois)[0]))]

    def __call__(self, img, landmarks=None):
        self.calls.append(("landmarks", landmarks.shape))
        lm = landmarks[0]
        roi = np.r_[lm.min(0) - 1, lm.max(0) + 1]
        return type("R", (), {"faces": [_Face(self._lm(roi))]})


def test_run_mb05_picks_largest_confident_face_and_resumes(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"i{i}.png"
        cv2.imwrite(str(p), np.zeros((100, 100, 3), np.uint8))
        paths.append(str(p))
    paths.append(str(tmp_path / "missing.png"))
    rec = _FakeRec()
    out = str(tmp_path / "mb.npz")
    res = run_mb05(paths[:2], out, "unused", progress=False, chunk=1, reconstructor=rec)
    assert res["found"].tolist() == [True, True]
    # within 0.05 of the best score, the larger box wins; then one re-crop from landmarks
    assert np.allclose(rec.calls[0][1], [0, 0, 80, 80]) and rec.calls[1][0] == "landmarks"
    assert np.allclose(res["box"][0], [0, 0, 80, 80, 0.88])
    res = run_mb05(paths, out, "unused", progress=False, reconstructor=rec)
    assert len(rec.calls) == 6                       # only the new readable image ran
    i = lookup(res, [os.path.abspath(p) for p in paths])
    assert res["found"][i].tolist() == [True, True, True, False]
    assert np.isnan(res["landmarks"][i[3]]).all() and res["n_faces"][i[3]] == 0
    with pytest.raises(KeyError, match="not in the teacher cache"):
        lookup(res, ["/elsewhere.png"])
    with pytest.raises(FileNotFoundError, match="teacher"):
        run_mb05([str(tmp_path / "new.png")], str(tmp_path / "x.npz"), str(tmp_path / "none"),
                 progress=False)


def test_cli_bad_arguments(capsys, tmp_path):
    from pyface3d.cli import main
    assert main(["labels", "build", "--shared", str(tmp_path / "none")]) == 2
    assert "--shared" in capsys.readouterr().err
    assert main(["labels", "build", "--shared", str(tmp_path), "--sources", "foo"]) == 2
    assert "--sources" in capsys.readouterr().err
    assert main(["labels", "build", "--shared", str(tmp_path), "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
