"""codo_train: CoDo contrastive pretraining of a detector-aligned ResNet-FPN with a 4conv1fc box head."""

from .config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str):
    """`train` and `TrainResult` import torch lazily, so `codo-train --help` answers at once."""
    if name in ("train", "TrainResult"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'codo_train' has no attribute {name!r}")
