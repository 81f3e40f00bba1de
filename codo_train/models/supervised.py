"""SupervisedModel: the positive control (issue 11), RoI classification through CoDo's backbone, FPN, RoI
pooling and box head, with no target, projector or predictor."""

import torch
from torch import nn

from .encoder import BOX_HEAD_DIM, Features, mlp
from .levels import largest_side


class SupervisedModel(nn.Module):
    """Box-head features of `online` (levels mode and rule as CoDo's) -> `classifier` (1024 -> `num_classes`,
    trained with cross-entropy). Exports leave the classifier out (it is no part of a detector).

    Before it lost them the model drew a projector and a predictor between the box head and the classifier;
    it still draws (and drops) them there, so a seed gives the classifier the initial weights it gave then
    and a run reproduces its losses across versions. `proj_hidden` and `proj_dim` are those sizes."""

    def __init__(self, arch: str, num_classes: int, levels: str = "size", level_rule: str = "fpn",
                 proj_hidden: int = 4096, proj_dim: int = 256):
        super().__init__()
        self.online = Features(arch, levels, level_rule)
        mlp(BOX_HEAD_DIM, proj_hidden, proj_dim), mlp(proj_dim, proj_hidden, proj_dim)  # drawn, dropped
        self.classifier = nn.Linear(BOX_HEAD_DIM, num_classes)

    def forward(self, views: list[torch.Tensor], rois: list[list[torch.Tensor]],
                rows: list[list[torch.Tensor]] | None = None) -> tuple[list[dict[str, torch.Tensor]], list]:
        """Per view, per pooling branch: the class logits of every RoI; no target (an empty list)."""
        reference = largest_side(views)
        logits = [{k: self.classifier(f) for k, f in self.online.box_features(v, r, reference, lr).items()}
                  for v, r, lr in zip(views, rois, rows or [None] * len(views))]
        return logits, []
