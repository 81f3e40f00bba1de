"""A step's figures held on the device until a logging step fetches them: every step still gets its line
in metrics.jsonl, but the steps in between never wait for the device (no .item() per loss and level)."""

import math
from dataclasses import dataclass, field

import torch

from .losses.term import LossTerm, named
from .models.levels import LEVELS
from .losses.terms import level_means


@dataclass
class StepFigures:
    """One step's figures: `host` ones (learning rate, timings, ...) as they are, the loss terms and the
    per-level loss sums and counts as device tensors, the RoIs per level as a host tensor."""

    step: int
    host: dict
    loss: torch.Tensor
    pairs: dict[LossTerm, torch.Tensor]
    level_sums: torch.Tensor | None = None
    level_counts: torch.Tensor | None = None
    rois: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)  # figures fetched at the step itself (health, GPU memory)

    def record(self) -> dict:
        """The step's metrics.jsonl line (fetches its tensors)."""
        levels = {} if self.level_sums is None else level_means(self.level_sums, self.level_counts)
        rois = {} if self.rois is None else {f"p{lvl}": n for lvl, n in zip(LEVELS, self.rois.tolist())}
        pairs = {k: v.item() for k, v in named(self.pairs).items()}
        return {"step": self.step, "loss": self.loss.item(), "lr": self.host["lr"],
                "momentum": self.host["momentum"], "pairs": pairs, "levels": levels, "rois_per_level": rois,
                **{k: v for k, v in self.host.items() if k not in ("lr", "momentum")}, **self.extra}


def fetch(pending: list[StepFigures]) -> list[dict]:
    """The records of `pending` (emptied), in step order; stops after the first whose loss is not finite
    (its record last: the caller stops the run there)."""
    records = []
    while pending:
        records.append(pending.pop(0).record())
        if not math.isfinite(records[-1]["loss"]):
            pending.clear()
            break
    return records
