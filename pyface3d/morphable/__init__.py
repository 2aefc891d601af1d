"""3D morphable models: the :class:`MorphableModel` container and our ``.npz`` format,
readers for BFM (3DDFA pickle, BFM2009 .mat) and ICT-FaceKit (OBJ folder, npz), the ICT
model builder, and the 3DDFA parameter layout / whitening / Euler angles.

See docs/morphable.md.
"""
from .model import MorphableModel, FORMAT_NAME, FORMAT_VERSION, NUM_POSE_PARAMS  # noqa: F401
from .params import (split_params, join_params, whiten, unwhiten, whitening_stats,  # noqa: F401
                     decompose_pose, euler_angles, rotation_from_euler, pose_from_euler,
                     mirror_pose)
from .bfm import load_3ddfa_bfm, load_3ddfa_param_mean_std, load_bfm2009  # noqa: F401
from .ict import load_ict_facekit, read_obj, triangulate  # noqa: F401
from .builder import build_ict_model, PosePrior  # noqa: F401
from .resolve import resolve  # noqa: F401

__all__ = ["MorphableModel", "FORMAT_NAME", "FORMAT_VERSION", "NUM_POSE_PARAMS",
           "split_params", "join_params", "whiten", "unwhiten", "whitening_stats",
           "decompose_pose", "euler_angles", "rotation_from_euler", "pose_from_euler",
           "mirror_pose", "load_3ddfa_bfm", "load_3ddfa_param_mean_std", "load_bfm2009",
           "load_ict_facekit", "read_obj", "triangulate", "build_ict_model", "PosePrior", "resolve"]
