import json
import os

import pytest

from .conftest import teacher_dir


def test_pipeline_demo_with_the_teacher(tmp_path, capsys):
    pytest.importorskip("skimage")
    from pyface3d.demo_pipeline import run_pipeline_demo
    t = run_pipeline_demo(str(tmp_path), teacher=str(teacher_dir()), frames=6)
    for f in ("astronaut_landmarks.png", "astronaut.json", "astronaut_clip.mp4"):
        assert os.path.isfile(tmp_path / f), f
    d = json.load(open(tmp_path / "astronaut.json"))
    assert len(d["faces"]) == 1
    # the face is in the upper middle of the 512x512 photo
    x1, y1, x2, y2 = d["faces"][0]["box"]
    assert 150 < (x1 + x2) / 2 < 300 and 40 < (y1 + y2) / 2 < 200
    assert t["clip_fps"] > 0 and "fps end to end" in capsys.readouterr().out
