"""The pipeline benchmark suites (same as ``pyface3d bench``):
``python -m bench.bench_pipeline [--suites network,pipeline,render] [--backends torch,onnxruntime]
[--weights model.pt | --teacher DIR | --model NAME] [--json out.json]``.
See docs/pipeline.md and bench/README.md."""
import sys

from pyface3d.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench"] + sys.argv[1:]))
