"""codo_aug: background-invariant copy-paste synthesis for CoDo-style object-level pretraining."""

__version__ = "0.1.0"

from .config import SynthConfig
from .errors import CodoError, InputError, RunError
from .pipeline import Sample, Synthesizer
from .render.compose import View
from .sources.spec import open_source
from .synth import SynthJob, SynthReport, run_synth

__all__ = ["CodoError", "InputError", "RunError", "Sample", "SynthConfig", "Synthesizer", "SynthJob", "SynthReport", "View", "open_source",
           "run_synth"]
