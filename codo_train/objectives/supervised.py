"""The supervised positive control (issue 11): each RoI's instance class by cross-entropy, through CoDo's
backbone, FPN, RoI pooling and box head; no pairs, no target, no momentum."""

import torch
from torch import nn

from ..batch import TrainBatch
from ..losses.term import LossTerm
from ..losses.supervised import roi_class_losses
from ..models.config import ModelConfig
from ..models.encoder import mlp
from ..models.supervised import SupervisedModel
from ..optim import group_names, renamed_state
from .base import Objective, Outputs

#: What the model had before (checkpoints written then): the projector, the predictor, the target.
_DROPPED = ("online.projector", "predictor", "target")


class Supervised(Objective):
    needs_classes = True

    @classmethod
    def build(cls, config: ModelConfig) -> SupervisedModel:
        if not config.classes:
            raise ValueError("a supervised model needs its instance classes (ModelConfig.classes)")
        return SupervisedModel(config.arch, len(config.classes), config.levels, config.level_rule,
                               config.proj_hidden, config.proj_dim)

    @classmethod
    def upgrade_legacy(cls, ckpt: dict) -> dict:
        """The model carried a target and, between its box head and classifier, a projector and predictor
        its loss never used: their weights go, and the optimizer's groups lose them (never given a
        gradient, they have no state)."""
        with torch.device("meta"):
            names = [n for n, _ in cls.build(ModelConfig.from_dict(ckpt["model_config"])).named_parameters()]
            dropped = [f"{where}.{n}" for where in _DROPPED[:2] for n, _ in mlp(1, 1, 1).named_parameters()]
        state = ckpt["model"]
        model = {k: v for k, v in state.items() if not k.startswith(tuple(f"{d}." for d in _DROPPED))}
        if "optimizer" not in ckpt:
            return {**ckpt, "model": model}
        head = [n for n in names if n.startswith("classifier.")]  # the dropped ones came before it
        old = [n for n in names if n not in head] + dropped + head
        optimizer = renamed_state(ckpt["optimizer"], group_names(old, state), group_names(names, state))
        return {**ckpt, "model": model, "optimizer": optimizer}

    def make_loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def step_terms(self, batch: TrainBatch) -> list[LossTerm]:
        """Each branch with each view (a term per view: no pairs)."""
        return [LossTerm(branch, (j,)) for branch in sorted(self.branches) for j in range(len(batch.views))]

    def terms(self, outputs: Outputs, targets: Outputs, batch: TrainBatch) -> dict[LossTerm, torch.Tensor]:
        return roi_class_losses(outputs, batch.labels, self.loss)
