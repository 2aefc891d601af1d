"""``python -m pyface3d.augment augment profile ...`` (the same as ``pyface3d augment ...``)."""
import sys

from .cli import main

sys.exit(main())
