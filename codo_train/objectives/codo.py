"""CoDo's objective (DESIGN.md section 2): each instance's RoI embedding in one view predicts its momentum
target's in another (BYOL, or InfoNCE by the run's `loss`), per pooling branch, with an image-level term
where `image_weight` > 0; per-level figures of the loss (metrics.jsonl's `levels`)."""

from dataclasses import replace
from typing import Sequence

import torch

from ..batch import TrainBatch
from ..config import TrainConfig
from ..losses.term import LossTerm
from ..losses.terms import branch_levels, level_losses
from ..models.config import ModelConfig
from .base import MomentumPairs, Outputs


class CoDo(MomentumPairs):
    @classmethod
    def model_config(cls, cfg: TrainConfig, classes: Sequence[str] | None = None) -> ModelConfig:
        return replace(super().model_config(cfg, classes), image_level=cfg.image_weight > 0)

    def branch_weights(self) -> dict[str, float]:
        return {**super().branch_weights(), "image": self.cfg.image_weight}

    def level_figures(self, losses: dict[LossTerm, torch.Tensor], outputs: Outputs, targets: Outputs,
                      batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """By the FPN level of each query RoI (levels 'size'), or each level's branch terms ('all')."""
        if "size" in self.branches:
            return level_losses(outputs, targets, batch.pairs, batch.levels, self.loss)
        return branch_levels(losses)
