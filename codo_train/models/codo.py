"""CoDoModel: online encoder + predictor, and a momentum target encoder (BYOL, Grill et al. 2020)."""

import copy

import torch
from torch import nn

from .encoder import Encoder, mlp
from .levels import largest_side


class CoDoModel(nn.Module):
    """`online` and `predictor` learn; `target` follows `online` by momentum and gets no gradient."""

    def __init__(self, arch: str, proj_hidden: int = 4096, proj_dim: int = 256, levels: str = "size",
                 image_level: bool = False, objects: bool = True, level_rule: str = "fpn"):
        super().__init__()
        self.online = Encoder(arch, proj_hidden, proj_dim, levels, image_level, objects, level_rule)
        self.predictor = mlp(proj_dim, proj_hidden, proj_dim)
        self.target = copy.deepcopy(self.online)
        for p in self.target.parameters():
            p.requires_grad_(False)

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
