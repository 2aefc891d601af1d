"""Training of the 3D network: ``pyface3d train 3d --config FILE``."""
from .config import TrainConfig, load_config  # noqa: F401
from .trainer import load_trained, train  # noqa: F401
