"""Real-time inference (``pyface3d.pipeline``): detectors, the face reconstructor, tracking
with One-Euro smoothing, overlays and the pipelined video runner. See docs/pipeline.md."""
from .assets import ASSETS, download_asset, find_asset  # noqa: F401
from .backends import BACKENDS, Backend, TorchBackend, make_backend  # noqa: F401
from .detect import (BoxesDetector, FaceDetector, HaarDetector, YuNetDetector,  # noqa: F401
                     make_detector)
from .reconstructor import (FaceReconstructor, FaceResult, FrameResult,  # noqa: F401
                            KeypointHead, MorphableHead)
from .smoothing import OneEuroFilter  # noqa: F401
