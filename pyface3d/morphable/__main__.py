"""``python -m pyface3d.morphable SOURCE OUT.npz ...``: build our ICT-FaceKit model
(see :func:`pyface3d.morphable.builder.main`)."""
import sys

from .builder import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
