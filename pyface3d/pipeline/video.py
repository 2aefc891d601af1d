"""Video: sources (files, webcam indices, stream URLs, or any iterable of frames), a
writer, and a pipelined runner that overlaps decoding, inference and rendering.

Threads and queues: a reader thread decodes into a bounded queue; the caller's thread
runs the tracker (detection, crops, network, reconstruction); a third thread draws the
overlays and writes / shows the frames. Live sources (webcams, URLs) drop the oldest
queued frame when inference falls behind (latency stays bounded); files and frame
iterables never drop a frame (the reader waits). Corrupt or undecodable frames and frames
that are not images are counted and skipped; a file whose frames fail more than
``max_bad_frames`` times in a row ends; a resolution change resets the tracker and the
frame is resized to the writer's size.
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .draw import draw_frame
from .reconstructor import FaceReconstructor, FrameResult
from .tracking import FaceTracker

__all__ = ["VideoSource", "VideoWriter", "VideoRunner", "RunStats", "open_source"]

_END = object()


class VideoSource:
    """Frames from a file, a webcam index (``0`` or ``"0"``), a stream URL
    (``rtsp://``, ``http(s)://``, ...), or an iterable of numpy frames (``None`` or
    non-image entries count as corrupt frames). Iterating yields ``(index, timestamp_s,
    frame)``; ``live`` is True for webcams and URLs."""

    def __init__(self, source: Union[str, int, Iterable], max_bad_frames: int = 30,
                 fps: Optional[float] = None):
        self.max_bad_frames = int(max_bad_frames)
        self.bad_frames = 0
        self._cap = None
        self._iter = None
        if isinstance(source, (int, np.integer)) or (isinstance(source, str)
                                                      and source.isdigit()):
            self.kind, self.live = "webcam", True
            self._cap = cv2.VideoCapture(int(source))
            if not self._cap.isOpened():
                raise RuntimeError(f"argument `source`: webcam {source} could not be opened "
                                   "(no camera, or no permission)")
        elif isinstance(source, (str, os.PathLike)):
            s = os.fspath(source)
            if "://" in s:
                self.kind, self.live = "stream", True
            else:
                if not os.path.isfile(s):
                    raise FileNotFoundError(f"argument `source`: video file {s} does not exist")
                self.kind, self.live = "file", False
            self._cap = cv2.VideoCapture(s)
            if not self._cap.isOpened():
                raise ValueError(f"argument `source`: {s} could not be opened as a video by "
                                 "OpenCV (unsupported format or codec, or unreachable URL)")
        else:
            try:
                self._iter = iter(source)
            except TypeError as e:
                raise TypeError(f"argument `source` must be a path, URL, webcam index or an "
                                f"iterable of frames, got {type(source).__name__}") from e
            self.kind, self.live = "frames", False
        self.fps = fps or (self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None else 0) \
            or 30.0
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) \
            if self._cap is not None and self.kind == "file" else None

    def __iter__(self) -> Iterator[Tuple[int, float, np.ndarray]]:
        idx, bad_run = 0, 0
        t_start = time.perf_counter()
        while True:
            if self._iter is not None:
                try:
                    frame = next(self._iter)
                except StopIteration:
                    return
                ok = isinstance(frame, np.ndarray) and frame.ndim in (2, 3) and frame.size > 0 \
                    and frame.dtype == np.uint8
            else:
                ok, frame = self._cap.read()
                if not ok and self.kind == "file":
                    pos = self._cap.get(cv2.CAP_PROP_POS_FRAMES)
                    if self.frame_count is None or pos >= self.frame_count - 1 or \
                            bad_run >= self.max_bad_frames:
                        return
            if not ok:
                self.bad_frames += 1
                bad_run += 1
                if bad_run > self.max_bad_frames:
                    return
                if self.live:
                    time.sleep(0.01)
                idx += 1
                continue
            bad_run = 0
            ts = (time.perf_counter() - t_start) if self.live else idx / self.fps
            yield idx, ts, frame
            idx += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()


def open_source(source, **kw) -> VideoSource:
    return source if isinstance(source, VideoSource) else VideoSource(source, **kw)


class VideoWriter:
    """Writes BGR frames to ``path`` (codec from the extension: .mp4 mp4v, .avi MJPG,
    else mp4v); opened on the first frame, whose size it keeps: later frames of another
    size are resized to it (counted in ``resized``)."""

    def __init__(self, path, fps: float = 30.0):
        self.path, self.fps = os.fspath(path), float(fps)
        d = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(d):
            raise FileNotFoundError(f"argument `out`: folder {d} does not exist")
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in (".mp4", ".avi", ".mov", ".mkv", ".m4v"):
            raise ValueError(f"argument `out`: unsupported video extension {ext!r} (use .mp4 "
                             "or .avi)")
        self._fourcc = cv2.VideoWriter_fourcc(*("MJPG" if ext == ".avi" else "mp4v"))
        self._w = None
        self.size = None
        self.frames = self.resized = 0

    def write(self, frame: np.ndarray) -> None:
        if self._w is None:
            self.size = (frame.shape[1], frame.shape[0])
            self._w = cv2.VideoWriter(self.path, self._fourcc, self.fps, self.size)
            if not self._w.isOpened():
                raise RuntimeError(f"could not open {self.path} for writing (codec missing?)")
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
            self.resized += 1
        self._w.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._w is not None:
            self._w.release()


@dataclass
class RunStats:
    """What a run did: frames read / processed / written / dropped, corrupt frames, faces,
    wall time, fps, and per-stage mean latency in ms."""
    frames_read: int = 0
    frames_processed: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    bad_frames: int = 0
    frames_without_face: int = 0
    resolution_changes: int = 0
    faces: int = 0
    seconds: float = 0.0
    stage_ms: Dict[str, float] = field(default_factory=dict)
    results: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "results"}
        d["fps"] = self.fps
        return d


class VideoRunner:
    """Runs a :class:`FaceTracker` over a video with decode / inference / output overlapped.

    Args:
        reconstructor: the pipeline.
        overlays: what :func:`draw_frame` draws on output frames.
        out: output video path (None: no video written).
        show: display in a window (needs an OpenCV build with GUI support; the headless
            wheel has none).
        queue_size: bound of each queue.
        keep_results: keep each frame's result dict in ``RunStats.results``.
        print_every: seconds between live fps / latency lines on stderr (0: never).
        tracker_options: passed to :class:`FaceTracker`.
    """

    def __init__(self, reconstructor: FaceReconstructor, overlays: Sequence[str] = ("landmarks",),
                 out=None, show: bool = False, queue_size: int = 4, keep_results: bool = False,
                 print_every: float = 1.0, **tracker_options):
        dense = any(o in ("depth", "pncc", "normals", "mesh") for o in overlays)
        tracker_options.setdefault("dense", dense)
        self.tracker = FaceTracker(reconstructor, **tracker_options)
        self.rec = reconstructor
        self.overlays = tuple(overlays)
        self.out, self.show = out, show
        if show:
            try:
                cv2.namedWindow("pyface3d", cv2.WINDOW_NORMAL)
            except cv2.error as e:
                raise RuntimeError("--show needs an OpenCV build with GUI support (the "
                                   "opencv-python-headless wheel has none): install "
                                   "opencv-python, or write a file with --out") from e
        if queue_size < 1:
            raise ValueError(f"argument `queue_size` must be >= 1, got {queue_size}")
        self.queue_size, self.keep_results, self.print_every = queue_size, keep_results, print_every

    def run(self, source, max_frames: Optional[int] = None) -> RunStats:
        src = open_source(source)
        stats = RunStats()
        q_in: "queue.Queue" = queue.Queue(self.queue_size)
        q_out: "queue.Queue" = queue.Queue(self.queue_size)
        stop = threading.Event()
        errors: List[BaseException] = []
        stage_sum: Dict[str, float] = {}
        lock = threading.Lock()

        def add(k, v):
            with lock:
                stage_sum[k] = stage_sum.get(k, 0.0) + v

        def reader():
            try:
                it = iter(src)
                while not stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        item = next(it)
                    except StopIteration:
                        break
                    add("decode", (time.perf_counter() - t0) * 1e3)
                    stats.frames_read += 1
                    if max_frames is not None and stats.frames_read > max_frames:
                        break
                    if src.live:
                        while True:
                            try:
                                q_in.put_nowait(item)
                                break
                            except queue.Full:
                                try:
                                    q_in.get_nowait()
                                    stats.frames_dropped += 1
                                except queue.Empty:
                                    pass
                    else:
                        while not stop.is_set():
                            try:
                                q_in.put(item, timeout=0.1)
                                break
                            except queue.Full:
                                continue
            except BaseException as e:  # noqa: BLE001 - reported by run()
                errors.append(e)
            finally:
                stats.bad_frames = src.bad_frames
                q_in.put(_END)

        writer = None
        if self.out is not None:
            writer = VideoWriter(self.out, src.fps)

        def output():
            try:
                while True:
                    item = q_out.get()
                    if item is _END:
                        break
                    frame, res = item
                    t0 = time.perf_counter()
                    img = draw_frame(frame, res, self.overlays, self.rec) if (
                        writer is not None or self.show) else frame
                    t1 = time.perf_counter()
                    add("draw", (t1 - t0) * 1e3)
                    if writer is not None:
                        writer.write(img)
                        stats.frames_written += 1
                        add("write", (time.perf_counter() - t1) * 1e3)
                    if self.show:
                        cv2.imshow("pyface3d", img)
                        if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                            stop.set()
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
                stop.set()

        th_r = threading.Thread(target=reader, name="pyface3d-decode", daemon=True)
        th_o = threading.Thread(target=output, name="pyface3d-output", daemon=True)
        t_start = time.perf_counter()
        th_r.start()
        th_o.start()
        last_print, shape = t_start, None
        try:
            while True:
                item = q_in.get()
                if item is _END:
                    break
                idx, ts, frame = item
                if frame.ndim == 2 or frame.shape[2] != 3:
                    from .detect import check_image
                    frame = check_image(frame, "frame")
                if shape is not None and frame.shape[:2] != shape:
                    stats.resolution_changes += 1
                shape = frame.shape[:2]
                res = self.tracker.update(frame, ts)
                stats.frames_processed += 1
                stats.faces += len(res.faces)
                if not res.faces:
                    stats.frames_without_face += 1
                for k, v in res.timings.items():
                    add(k, v)
                if self.keep_results:
                    d = res.to_dict()
                    d["frame"] = idx
                    stats.results.append(d)
                if src.live:
                    try:
                        q_out.put_nowait((frame, res))
                    except queue.Full:
                        stats.frames_dropped += 1
                else:
                    while True:
                        if not th_o.is_alive():
                            raise RuntimeError("the output thread stopped")
                        try:
                            q_out.put((frame, res), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                now = time.perf_counter()
                if self.print_every and now - last_print >= self.print_every:
                    last_print = now
                    fps = stats.frames_processed / (now - t_start)
                    with lock:
                        per = {k: v / max(stats.frames_processed, 1) for k, v in stage_sum.items()}
                    sys.stderr.write(f"\r{stats.frames_processed} frames  {fps:6.1f} fps  " +
                                     "  ".join(f"{k} {v:.2f}ms" for k, v in per.items()
                                               if k != "total") + " ")
                    sys.stderr.flush()
        except KeyboardInterrupt:
            stop.set()
        finally:
            stop.set()
            # unblock the reader, finish the output
            while th_r.is_alive():
                try:
                    q_in.get(timeout=0.05)
                except queue.Empty:
                    pass
            while th_o.is_alive():
                try:
                    q_out.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue
            th_o.join()
            th_r.join()
            src.close()
            if writer is not None:
                writer.close()
            if self.show:
                cv2.destroyAllWindows()
            if self.print_every:
                sys.stderr.write("\n")
        stats.seconds = time.perf_counter() - t_start
        n = max(stats.frames_processed, 1)
        stats.stage_ms = {k: v / n for k, v in stage_sum.items()}
        if errors:
            raise errors[0]
        return stats
