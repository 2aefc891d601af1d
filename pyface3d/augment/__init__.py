"""Data augmentation by 3D face profiling (300W-LP style rotation of real images); see
docs/augment.md."""
from .profile import (FaceProfiler, ProfileConfig, ProfiledView, profile_face,  # noqa: F401
                      yaw_rotation, yaw_schedule)
from .batch import profile_folder, read_landmark_records  # noqa: F401
from .cli import add_parser  # noqa: F401
