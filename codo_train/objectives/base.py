"""Objective, the strategy a training run follows (its model, loss branches, terms and per-level figures),
and MomentumPairs, the BYOL family's shared half: views compared in pairs against a momentum target."""

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import torch
from torch import nn

from codo_aug.errors import RunError

from ..batch import TrainBatch
from ..config import TrainConfig
from ..losses import LOSSES
from ..losses.term import LossTerm
from ..losses.terms import pair_losses
from ..models.codo import CoDoModel
from ..models.config import ModelConfig
from ..models.levels import LEVELS, branch_names
from ..momentum import update_momentum

Outputs = list[dict[str, torch.Tensor]]  # per view, per pooling branch: N x D


class Objective(ABC):
    """What a run trains and how. `build` makes the model from a ModelConfig alone (so export, probe and
    health rebuild it without the run's other settings); an instance, made once per run, names the loss
    branches, holds the loss (an nn.Module: its state, InfoNCE's key queues, is checkpointed as 'loss'),
    and for each micro-batch gives the loss terms and the per-level figures.

    The model is called as `model(views, rois, level_rows) -> (outputs, targets)`, per view and branch;
    the trainer optimises its parameters that require a gradient."""

    #: Whether the model needs the run's instance classes (ModelConfig.classes).
    needs_classes: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig, config: ModelConfig):
        self.cfg, self.config = cfg, config
        self.branches = self.name_branches()
        self.weights = self.branch_weights()
        self.loss = self.make_loss()

    @classmethod
    def model_config(cls, cfg: TrainConfig, classes: Sequence[str] | None = None) -> ModelConfig:
        """The model a run of `cfg` trains (`classes`: the run's instance classes, where needs_classes)."""
        return ModelConfig(cfg.arch, cfg.objective, cfg.levels, cfg.level_rule, classes=tuple(classes or ()))

    @classmethod
    @abstractmethod
    def build(cls, config: ModelConfig) -> nn.Module:
        """The model, randomly initialised from torch's RNG."""

    @classmethod
    def upgrade_legacy(cls, ckpt: dict) -> dict:
        """A checkpoint written before the model config (upgrade.py), with what this objective's model has
        changed since (its model config is there already)."""
        return ckpt

    def name_branches(self) -> tuple[str, ...]:
        """The pooling branches the terms come from, in the model's order: its RoI branches by levels mode."""
        return branch_names(self.config.levels)

    def branch_weights(self) -> dict[str, float]:
        """Each branch's weight in the loss (a branch not named weighs 1): the run's level weights."""
        return {f"p{lvl}": w for lvl, w in zip(LEVELS, self.cfg.level_weights)}

    def make_loss(self) -> nn.Module:
        """The run's pair loss (LOSSES[cfg.loss]) over the branches, at the projection size."""
        return LOSSES[self.cfg.loss](self.cfg, self.branches, self.config.proj_dim)

    def step_terms(self, batch: TrainBatch) -> list[LossTerm]:
        """The terms a batch of this shape can have: each branch with each view pair."""
        return [LossTerm(branch, views) for branch in sorted(self.branches) for views in batch.pairs]

    @abstractmethod
    def terms(self, outputs: Outputs, targets: Outputs, batch: TrainBatch) -> dict[LossTerm, torch.Tensor]:
        """A micro-batch's loss terms (each the mean over its rows), from the model's outputs."""

    def level_figures(self, losses: dict[LossTerm, torch.Tensor], outputs: Outputs, targets: Outputs,
                      batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(sums, counts) of the loss over P2..P5 (device tensors), or None where it has no such figures."""
        return None

    def after_step(self, model: nn.Module, targets: list[Outputs], momentum: float) -> None:
        """After the optimizer's step: `targets` are each micro-batch's; `momentum` the target's rate."""


class MomentumPairs(Objective):
    """Views compared in pairs (SoCo's (0, j), or all pairs) through a CoDoModel: each matched instance's
    online prediction against its target projection in the other view, both ways, by the run's pair loss;
    after each step the loss remembers the step's targets and the target follows by momentum (BYOL)."""

    #: Whether the model has RoI branches (the image-level baseline has none).
    objects: ClassVar[bool] = True

    @classmethod
    def build(cls, config: ModelConfig) -> CoDoModel:
        return CoDoModel(config.arch, config.proj_hidden, config.proj_dim, config.levels, config.image_level,
                         cls.objects, config.level_rule)

    def name_branches(self) -> tuple[str, ...]:
        objects = super().name_branches() if self.objects else ()
        return objects + (("image",) if self.config.image_level else ())

    def terms(self, outputs: Outputs, targets: Outputs, batch: TrainBatch) -> dict[LossTerm, torch.Tensor]:
        losses = pair_losses(outputs, targets, batch.img, batch.ids, self.loss, self.cfg.all_pairs,
                             batch.pairs)
        if not losses:
            raise RunError("no instance is shared between views in a batch; check the shards")
        return losses

    def after_step(self, model: CoDoModel, targets: list[Outputs], momentum: float) -> None:
        self.loss.remember(targets)
        update_momentum(model.online, model.target, momentum)
