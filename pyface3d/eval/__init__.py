"""Benchmarks of 3DMM-regression networks (thesis table 6.1): AFLW (the aflw-dev protocol,
21 points) and AFLW2000-3D (68 points), NME per |yaw| bucket, JSON / Markdown / CED plot.
See docs/eval.md."""
from .evaluate import (EvalResult, LandmarkPredictor, evaluate_aflw,  # noqa: F401
                       evaluate_aflw2000, load_predictor, load_teacher, load_weights,
                       predict_landmarks)

__all__ = ["EvalResult", "LandmarkPredictor", "evaluate_aflw", "evaluate_aflw2000",
           "load_predictor", "load_teacher", "load_weights", "predict_landmarks"]
