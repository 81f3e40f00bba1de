"""CoDoModel: online encoder + predictor, and a momentum target encoder (BYOL, Grill et al. 2020); and
SupervisedModel, the positive control that classifies the same RoIs through the same encoder."""

import copy
from typing import Sequence

import torch
from torch import nn

from ..config import TrainConfig
from ..losses.infonce import KeyQueue
from .encoder import BOX_HEAD_DIM, Encoder, mlp
from .levels import LEVELS, largest_side


class CoDoModel(nn.Module):
    """`online` and `predictor` learn; `target` follows `online` by momentum and gets no gradient."""

    def __init__(self, arch: str, proj_hidden: int = 4096, proj_dim: int = 256, levels: str = "size",
                 image_level: bool = False, queue_size: int = 0, objects: bool = True,
                 level_rule: str = "fpn"):
        super().__init__()
        self.online = Encoder(arch, proj_hidden, proj_dim, levels, image_level, objects, level_rule)
        self.predictor = mlp(proj_dim, proj_hidden, proj_dim)
        self.target = copy.deepcopy(self.online)
        for p in self.target.parameters():
            p.requires_grad_(False)
        #: InfoNCE key queues, one per branch (only with queue_size > 0).
        branches = ((["size"] if levels == "size" else [f"p{k}" for k in LEVELS]) if objects else []) + (
            ["image"] if image_level else [])
        self.queues = nn.ModuleDict({b: KeyQueue(queue_size, proj_dim) for b in branches}
                                    if queue_size else {})

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable()]

    def named_trainable(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) of the online encoder and the predictor: what the optimizer updates."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("target.")]

    def forward(self, views: list[torch.Tensor], rois: list[list[torch.Tensor]],
                rows: list[list[torch.Tensor]] | None = None
                ) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, torch.Tensor]]]:
        """Per view, per pooling branch: online predictions and target projections of every RoI.

        Level thresholds are scaled to the largest view, so smaller views pool their (smaller)
        boxes at lower levels; `rows[j]` (TrainBatch.level_rows) gives view j's RoIs per level, assigned
        once for the batch on the host.
        """
        reference = largest_side(views)
        rows = rows or [None] * len(views)
        preds = [{k: self.predictor(z) for k, z in self.online(v, r, reference, lr).items()}
                 for v, r, lr in zip(views, rois, rows)]
        with torch.no_grad():
            targets = [self.target(v, r, reference, lr) for v, r, lr in zip(views, rois, rows)]
        return preds, targets


class SupervisedModel(CoDoModel):
    """The positive control (issue 11): RoI classification into `num_classes` instance classes through
    the same backbone, FPN, RoI pooling (levels mode and rule) and box head as CoDo, box-head features
    -> `classifier` (1024 -> classes, trained with cross-entropy). The target, projector and predictor
    stay, so the trainer, health figures and checkpoints treat it as any run, but the loss never uses
    them; exports leave the classifier out (it is no part of a detector)."""

    def __init__(self, arch: str, num_classes: int, levels: str = "size", level_rule: str = "fpn"):
        super().__init__(arch, levels=levels, level_rule=level_rule)
        self.classifier = nn.Linear(BOX_HEAD_DIM, num_classes)

    def forward(self, views: list[torch.Tensor], rois: list[list[torch.Tensor]],
                rows: list[list[torch.Tensor]] | None = None) -> tuple[list[dict[str, torch.Tensor]], list]:
        """Per view, per pooling branch: the class logits of every RoI; no target (an empty list)."""
        reference = largest_side(views)
        logits = [{k: self.classifier(f) for k, f in self.online.box_features(v, r, reference, lr).items()}
                  for v, r, lr in zip(views, rois, rows or [None] * len(views))]
        return logits, []


def model_for(cfg: TrainConfig, classes: Sequence[str] | None = None) -> CoDoModel:
    """The model a run's config describes; a supervised run's also needs its instance `classes`."""
    if cfg.objective == "supervised":
        if not classes:
            raise ValueError("a supervised run's model needs its instance classes")
        return SupervisedModel(cfg.arch, len(classes), cfg.levels, cfg.level_rule)
    objects = cfg.objective == "codo"
    return CoDoModel(cfg.arch, levels=cfg.levels, image_level=not objects or cfg.image_weight > 0,
                     queue_size=cfg.queue_size if cfg.loss == "infonce" else 0, objects=objects,
                     level_rule=cfg.level_rule)
