"""codo_aug: background-invariant copy-paste synthesis for CoDo-style object-level pretraining."""

from .config import SynthConfig
from .errors import CodoError, InputError, RunError
from .pipeline import Synthesizer
from .sample import Sample, View
from .sources.spec import open_source
from .synth import SynthJob, SynthReport, run_synth
from .version import __version__

__all__ = [
    "__version__", "CoDoDataset", "CodoError", "ShardDataset", "InputError", "RunError", "Sample",
    "SynthConfig", "Synthesizer", "SynthJob", "SynthReport", "View", "open_source", "run_synth",
]


def __getattr__(name: str):
    """The torch datasets load on first use, so `codo-aug --help` stays quick."""
    if name == "CoDoDataset":
        from .dataset import CoDoDataset

        return CoDoDataset
    if name == "ShardDataset":
        from .shards.dataset import ShardDataset

        return ShardDataset
    raise AttributeError(f"module 'codo_aug' has no attribute {name!r}")
