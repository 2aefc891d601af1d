"""Training losses on 3DMM parameters (thesis chapter 6, eq. 6.3-6.8); see docs/losses.md."""
from .losses import (LOSS_NAMES, CombinedLoss, VDCLoss, WingVertexLoss, WPDCLoss,  # noqa: F401
                     basis_gram, default_vertex_subset, make_loss, wpdc_weights)
