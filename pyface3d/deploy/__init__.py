"""Export and deployment: ONNX export with a fused reconstruction head, an ONNX Runtime
runner, and TensorRT 10 engine building / runtimes (TensorRT and pycuda are optional
imports). See docs/deploy.md."""
from .export import (HEAD_OUTPUTS, ExportResult, ReconstructionHead, DeployModule,  # noqa: F401
                     UntrainedWarning, export_onnx, verify_onnx, parse_head, load_network,
                     build_deploy_module, calibrate_batchnorm)
from .graph import simplify, op_counts, unsupported_ops, load_trt_op_table  # noqa: F401
from .ort import OrtRunner, default_providers  # noqa: F401

__all__ = ["HEAD_OUTPUTS", "ExportResult", "ReconstructionHead", "DeployModule",
           "UntrainedWarning", "export_onnx", "verify_onnx", "parse_head", "load_network",
           "build_deploy_module", "calibrate_batchnorm", "simplify", "op_counts",
           "unsupported_ops", "load_trt_op_table", "OrtRunner", "default_providers"]
