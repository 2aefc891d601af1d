"""Data: ROIs and crops (3DDFA_V2 conventions), parameter conversions, datasets
(300W-LP, AFLW2000-3D, AFLW, generic images + labels) and augmentation. See docs/data.md."""
from .roi import CROP_SIZE, roi_from_box, roi_from_landmarks, crop_image, crop_to_image, image_to_crop  # noqa: F401
from .landmarks import IBUG68_FLIP, read_pts, write_pts, KeypointBases, load_3ddfa_keypoint_bases  # noqa: F401
from .convert import (angles_to_matrix_300wlp, pose_para_to_image_affine, params_from_300wlp,  # noqa: F401
                      image_affine_to_params, params_to_image_affine)
from .flip import ParamFlipper, flip_landmarks_pixels, flip_landmarks_model  # noqa: F401
from .transforms import (Compose, Crop, CropJitter, ColorJitter, GaussianBlur, Occlusion,  # noqa: F401
                         HorizontalFlip, ToNetworkInput, normalize_image)
from .datasets import (FaceDataset, LP300WDataset, AFLW2000Dataset, AFLWDataset,  # noqa: F401
                       ImageLabelsDataset)
