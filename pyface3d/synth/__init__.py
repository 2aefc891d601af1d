"""Parametric synthetic faces (thesis chapter 7): ``pyface3d.synth``. See docs/synth.md.

>>> from pyface3d.synth import FaceSynthesizer, SynthConfig, generate
>>> s = FaceSynthesizer("ict", SynthConfig(size=120, seed=0)).sample(0)   # arrays
>>> generate("synth_out", n=1000, config=SynthConfig(seed=0), workers=2)   # files
"""
from .config import FORMATS, MODALITIES, SynthConfig  # noqa: F401
from .regions import SEG_COLORS, SEG_LABELS  # noqa: F401
from .synthesizer import FaceSynthesizer, SynthSample  # noqa: F401
from .writer import LANDMARK_NAMES, generate, read_landmarks, read_layout  # noqa: F401

__all__ = ["SynthConfig", "FaceSynthesizer", "SynthSample", "generate", "MODALITIES",
           "FORMATS", "SEG_LABELS", "SEG_COLORS", "LANDMARK_NAMES", "read_landmarks",
           "read_layout"]
