"""A training objective from outside codo_train, in one file (the objectives' extension point): each matched
instance's box-head features in one view, through a small linear head, regress onto the other view's with a
stop-gradient (SimSiam's, Chen & He 2021, without projector or predictor). No target, no momentum, no
queue. Running this file registers it as 'siamese'; then `TrainConfig(objective="siamese", ...)` trains it."""

import torch
import torch.nn.functional as F
from torch import nn

from codo_train.losses.term import LossTerm
from codo_train.models.config import ModelConfig
from codo_train.models.encoder import BOX_HEAD_DIM, Features
from codo_train.models.levels import largest_side
from codo_train.objectives import OBJECTIVES
from codo_train.objectives.base import Objective


class SiameseModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.online = Features(config.arch, config.levels, config.level_rule)
        self.head = nn.Linear(BOX_HEAD_DIM, config.proj_dim)

    def forward(self, views, rois, rows=None):
        reference = largest_side(views)
        return [{k: self.head(f) for k, f in self.online.box_features(v, r, reference, lr).items()}
                for v, r, lr in zip(views, rois, rows or [None] * len(views))], []


class Siamese(Objective):
    @classmethod
    def build(cls, config: ModelConfig) -> SiameseModel:
        return SiameseModel(config)

    def terms(self, outputs, targets, batch):
        def regress(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
            return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1).mean()

        return {LossTerm(name, (a, b)): regress(outputs[a][name][ia], outputs[b][name][ib])
                + regress(outputs[b][name][ib], outputs[a][name][ia])
                for (a, b), (ia, ib) in batch.pairs.items() for name in self.branches if len(ia)}


OBJECTIVES.register("siamese", Siamese)
