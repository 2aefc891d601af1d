"""Batched 3DMM fitting to 2D/3D landmarks (scaled orthographic); see docs/fitting.md."""
from .fit import (fit_landmarks, fit_points, fit_to_model, pose_from_affine,  # noqa: F401
                  procrustes_fit, scaled_rotation_fit)
