"""Evaluation metrics: NME variants, yaw buckets and table 6.1, AFLW / AFLW2000-3D protocols,
CED / AUC / accuracy and CED plots; see docs/losses.md ("Metrics")."""
from .ced import AUC_THRESHOLDS, accuracy, auc, ced_curve, failure_rate, plot_ced  # noqa: F401
from .nme import (AFLW21_FROM_68, NORMS, aflw2000_nme, aflw21_from_68,  # noqa: F401
                  aflw21_visibility, aflw_dev_nme, bucket_by_yaw, format_yaw_table, nme,
                  normalizer)
