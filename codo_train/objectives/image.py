"""The image-level BYOL baseline: CoDo's views and pair loss on the image-level term alone (average-pooled P5
through its own projector); no RoI is pooled, so the box head stays as initialised."""

from dataclasses import replace
from typing import Sequence

from ..config import TrainConfig
from ..models.config import ModelConfig
from .base import MomentumPairs


class Image(MomentumPairs):
    objects = False

    @classmethod
    def model_config(cls, cfg: TrainConfig, classes: Sequence[str] | None = None) -> ModelConfig:
        return replace(super().model_config(cfg, classes), image_level=True)

    def branch_weights(self) -> dict[str, float]:
        return {"image": 1.0}  # the whole loss
