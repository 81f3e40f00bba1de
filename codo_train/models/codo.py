"""CoDoModel: online encoder + predictor, and a momentum target encoder (BYOL, Grill et al. 2020)."""

import copy

import torch
from torch import nn

from .encoder import Encoder, mlp


class CoDoModel(nn.Module):
    """`online` and `predictor` learn; `target` follows `online` by momentum and gets no gradient."""

    def __init__(self, arch: str, proj_hidden: int = 4096, proj_dim: int = 256):
        super().__init__()
        self.online = Encoder(arch, proj_hidden, proj_dim)
        self.predictor = mlp(proj_dim, proj_hidden, proj_dim)
        self.target = copy.deepcopy(self.online)
        for p in self.target.parameters():
            p.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for _, p in self.named_trainable()]

    def named_trainable(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) of the online encoder and the predictor: what the optimizer updates."""
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("target.")]

    def forward(self, views: list[torch.Tensor], rois: list[list[torch.Tensor]]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per view: online predictions and target projections of every RoI (rows in RoI order)."""
        preds = [self.predictor(self.online(v, r)) for v, r in zip(views, rois)]
        with torch.no_grad():
            targets = [self.target(v, r) for v, r in zip(views, rois)]
        return preds, targets
