"""codo_train: CoDo contrastive pretraining of a detector-aligned ResNet-FPN with a 4conv1fc box head."""

import importlib

from .config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "build_detector", "train"]

#: Names that import torch, loaded on first use so that `codo-train --help` answers at once.
_LAZY = {"train": "trainer", "TrainResult": "trainer", "build_detector": "evaluate.detector"}


def __getattr__(name: str):
    """`train`, `TrainResult` and `build_detector`, imported (and torch with them) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'codo_train' has no attribute {name!r}")
