"""Pseudo-labels for unlabelled real faces from two teachers (MediaPipe FaceMesh and the
3DDFA_V2 mb05 teacher) plus 300W's hand labels, as crop-frame morphable-model parameters
(docs/labels.md)."""
from .fit import FitConfig, FitResult, fit_labels, point_weights
from .fusion import Fusion, agreement, box_size, calibrate, nme_interocular
from .mapping import DEFAULT_MAP, GROUPS, Mp68Map, fit_mapping, group_errors, load_map
from .teachers import MEDIAPIPE_ENV, load_cache, mediapipe_python, run_mb05, run_mediapipe
from .build import BUILD_SOURCES, SOURCES, build, build_source, default_out, fit_default_map

__all__ = ["FitConfig", "FitResult", "fit_labels", "point_weights", "Fusion", "agreement",
           "box_size", "calibrate", "nme_interocular", "DEFAULT_MAP", "GROUPS", "Mp68Map",
           "fit_mapping", "group_errors", "load_map", "MEDIAPIPE_ENV", "load_cache",
           "mediapipe_python", "run_mb05", "run_mediapipe", "BUILD_SOURCES", "SOURCES", "build",
           "build_source", "default_out", "fit_default_map"]
