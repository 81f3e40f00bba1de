"""Losses, one per file, and the table of a pair loss by name (a run's `loss`): each entry makes the loss
of a run, `make(cfg, branches, dim) -> nn.Module` called as `loss(pred, target, branch, reduce=True)`, with
`remember(targets)` after each step (InfoNCE queues the step's target projections; BYOL keeps nothing)."""

from ..registry import Registry

#: name -> the factory of that loss (imported on first use: the names load no torch).
LOSSES = Registry("loss", {"byol": "codo_train.losses.byol:make",
                           "infonce": "codo_train.losses.infonce:make"})
