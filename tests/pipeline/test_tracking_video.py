import math
import os
import threading
import time

import cv2
import numpy as np
import pytest

from pyface3d.pipeline import FaceReconstructor, MorphableHead
from pyface3d.pipeline.detect import BoxesDetector, FaceDetector
from pyface3d.pipeline.tracking import FaceTracker, iou
from pyface3d.pipeline.video import VideoRunner, VideoSource

from .conftest import ConstBackend, consistent_value, lfpw_images


class CountingDetector(FaceDetector):
    def __init__(self, boxes):
        self.inner = BoxesDetector(boxes)
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return self.inner.detect(image)


def _rec(mm, value="consistent", boxes=((200, 150, 320, 300, 0.9),)):
    det = CountingDetector(list(boxes))
    if isinstance(value, str):
        value = consistent_value(mm)
    return FaceReconstructor(ConstBackend(value, P=mm.num_params), MorphableHead(mm),
                             detector=det), det


def _frames(n, h=480, w=640):
    for _ in range(n):
        yield np.full((h, w, 3), 100, np.uint8)


def test_iou():
    a = np.array([[0, 0, 10, 10]])
    np.testing.assert_allclose(iou(a, np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                [20, 20, 30, 30]])), [[1, 1 / 3, 0]])


def test_redetects_every_n_frames_and_keeps_the_track(toy_mm):
    rec, det = _rec(toy_mm)
    tr = FaceTracker(rec, redetect_every=5, min_confidence=0.3)
    ids = []
    for i, f in enumerate(_frames(20)):
        r = tr.update(f, i / 30)
        assert len(r) == 1
        ids.append(r.faces[0].track_id)
    assert det.calls == 4  # frames 0, 5, 10, 15
    assert set(ids) == {0}  # re-detections continue the same track
    assert tr.stats.tracked == 16


def test_low_confidence_triggers_redetection_and_drops_lost_faces(toy_mm):
    # huge shape coefficients: the crop "holds no face"
    rec, det = _rec(toy_mm, value=50.0)
    tr = FaceTracker(rec, redetect_every=100, min_confidence=0.5)
    for i, f in enumerate(_frames(6)):
        tr.update(f, i / 30)
    assert det.calls == 6  # every frame: the tracked face is never confident
    rec.detector.inner.set(np.zeros((0, 5)))  # the detector no longer sees it
    r = tr.update(np.full((480, 640, 3), 100, np.uint8), 1.0)
    r = tr.update(np.full((480, 640, 3), 100, np.uint8), 1.1)
    assert len(r) == 0 and tr.tracks == []


def test_resolution_change_resets(toy_mm):
    rec, det = _rec(toy_mm)
    tr = FaceTracker(rec, redetect_every=100)
    tr.update(np.zeros((480, 640, 3), np.uint8), 0.0)
    tr.update(np.zeros((480, 640, 3), np.uint8), 0.1)
    assert det.calls == 1
    r = tr.update(np.zeros((360, 640, 3), np.uint8), 0.2)
    assert det.calls == 2 and r.faces[0].track_id == 0  # new track list (ids restart)


def test_smoothing_only_changes_the_output(toy_mm):
    rec, _ = _rec(toy_mm)
    a = FaceTracker(rec, redetect_every=3, smooth=False)
    b = FaceTracker(rec, redetect_every=3, smooth=True)
    for i, f in enumerate(_frames(5)):
        ra, rb = a.update(f, i / 30), b.update(f, i / 30)
        np.testing.assert_array_equal(ra.faces[0].params, rb.faces[0].params)


def test_runner_survives_corrupt_frames_resolution_changes_and_empty_frames(toy_mm, tmp_path):
    rec, det = _rec(toy_mm)

    def gen():
        yield np.full((480, 640, 3), 90, np.uint8)
        yield None                                   # corrupt
        yield np.zeros((0, 0, 3), np.uint8)          # corrupt
        yield np.full((480, 640), 90, np.uint8)      # grey
        yield np.full((240, 320, 3), 90, np.uint8)   # resolution change
        yield np.full((240, 320, 4), 90, np.uint8)   # BGRA
    out = tmp_path / "o.mp4"
    st = VideoRunner(rec, overlays=("landmarks", "box", "axes", "depth"), out=str(out),
                     print_every=0, keep_results=True).run(gen())
    assert st.frames_processed == 4 and st.bad_frames == 2
    assert st.resolution_changes == 1 and st.frames_written == 4
    assert [r["frame"] for r in st.results] == [0, 3, 4, 5]
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 4
    rec.detector.inner.set(np.zeros((0, 5)))
    st = VideoRunner(rec, print_every=0).run(_frames(3))
    assert st.frames_without_face == 3 and st.faces == 0


def test_runner_never_drops_file_frames_but_drops_live_ones(toy_mm, tmp_path):
    clip = tmp_path / "c.avi"
    wr = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for i in range(20):
        wr.write(np.full((120, 160, 3), i * 10, np.uint8))
    wr.release()
    rec, _ = _rec(toy_mm, boxes=((40, 30, 100, 100, 0.9),))
    slow = rec.backend

    class Slow(ConstBackend):
        def __call__(self, crops):
            time.sleep(0.01)
            return slow(crops)
    rec.backend = Slow(P=toy_mm.num_params)
    st = VideoRunner(rec, print_every=0, queue_size=1).run(str(clip))
    assert st.frames_processed == 20 and st.frames_dropped == 0

    class Live(VideoSource):
        def __init__(self):
            self.live, self.kind, self.fps, self.bad_frames = True, "webcam", 30.0, 0

        def __iter__(self):
            for i in range(60):
                yield i, i / 1000, np.full((120, 160, 3), 50, np.uint8)

        def close(self):
            pass
    st = VideoRunner(rec, print_every=0, queue_size=1).run(Live())
    assert st.frames_dropped > 0 and st.frames_processed + st.frames_dropped >= 60 - 2


def test_video_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="source"):
        VideoSource(str(tmp_path / "none.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="could not be opened"):
        VideoSource(str(bad))
    with pytest.raises(TypeError, match="source"):
        VideoSource(3.5)


def test_teacher_tracks_a_moving_face(teacher_rec):
    img = cv2.imread(lfpw_images(4)[3])
    h, w = img.shape[:2]
    s = 200 / max(h, w)
    face = cv2.resize(img, (int(w * s), int(h * s)))
    frames, offs = [], []
    for i in range(40):
        f = np.full((480, 640, 3), 90, np.uint8)
        x, y = int(200 + 80 * math.sin(i / 10)), int(120 + 30 * math.cos(i / 12))
        f[y:y + face.shape[0], x:x + face.shape[1]] = face
        frames.append(f)
        offs.append((x, y))
    tr = FaceTracker(teacher_rec, redetect_every=20, smooth=False)
    per_frame = [teacher_rec(f).faces[0].landmarks[:, :2] - o for f, o in zip(frames, offs)]
    dev = []
    for i, (f, o) in enumerate(zip(frames, offs)):
        r = tr.update(f, i / 30)
        assert len(r) == 1 and r.faces[0].score > 0.5
        dev.append(np.abs(r.faces[0].landmarks[:, :2] - o - per_frame[0]).mean())
    assert tr.stats.detections == 2
    # the tracked landmarks move with the face: in face coordinates they stay put
    side = face.shape[0]
    assert np.max(dev) < 0.04 * side
