"""codo_train: CoDo contrastive pretraining of a detector-aligned ResNet-FPN with a 4conv1fc box head."""

from .config import TrainConfig
from .trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
