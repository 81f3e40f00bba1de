"""The trainer's batch: codo_aug's Batch plus what a step would otherwise work out on the device with
host synchronisations (nonzero, .item()), computed on the host where the batch is collated (in the
DataLoader worker): each view pair's matched rows, each RoI's FPN level, the rows each level pools and
the RoI count per level."""

from dataclasses import dataclass, fields
from functools import partial
from typing import Sequence

import torch

from codo_aug.dataset import Batch, collate

from .models.levels import batch_levels, level_counts, level_rows
from .pairs import pair_rows


@dataclass
class TrainBatch(Batch):
    """`pairs[(a, b)]`: rows (of views a and b) of the same instance of the same image; in `size` mode
    `levels[j]` each RoI's level and `level_rows[j][k]` the rows LEVELS[k] pools (None in `all` mode);
    `level_counts`: RoIs per level over the batch's views (every RoI at every level in `all` mode)."""

    pairs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None
    levels: list[torch.Tensor] | None = None
    level_rows: list[list[torch.Tensor]] | None = None
    level_counts: torch.Tensor | None = None

    def to(self, device: torch.device) -> "TrainBatch":
        def move(x: torch.Tensor) -> torch.Tensor:
            return x.to(device, non_blocking=True)

        return TrainBatch(
            **_batch_fields(super().to(device)),
            pairs={k: (move(a), move(b)) for k, (a, b) in self.pairs.items()},
            levels=None if self.levels is None else [move(lv) for lv in self.levels],
            level_rows=(None if self.level_rows is None
                        else [[move(r) for r in rows] for rows in self.level_rows]),
            level_counts=self.level_counts,  # stays on the host: a metric
        )


def _batch_fields(batch: Batch) -> dict:
    """codo_aug's Batch fields of `batch`, to build a TrainBatch on."""
    return {f.name: getattr(batch, f.name) for f in fields(Batch)}


def train_collate(samples: list, level_rule: str, level_mode: str, all_pairs: bool = False,
                  classes: Sequence[str] | None = None) -> TrainBatch | None:
    """codo_aug's collate (with `classes`, each RoI's class index), then the pairs and levels a step uses."""
    base = collate(samples, classes)
    if base is None:
        return None
    pairs = pair_rows(base.img, base.ids, all_pairs)
    levels = batch_levels(base.views, base.rois, level_rule) if level_mode == "size" else None
    return TrainBatch(**_batch_fields(base), pairs=pairs, levels=levels,
                      level_rows=None if levels is None else [level_rows(lv) for lv in levels],
                      level_counts=level_counts(levels, sum(len(i) for i in base.ids)))


def collate_for(level_rule: str, level_mode: str, all_pairs: bool, classes: Sequence[str] | None):
    """The collate function of a run's DataLoader (picklable, for worker processes)."""
    return partial(train_collate, level_rule=level_rule, level_mode=level_mode, all_pairs=all_pairs,
                   classes=classes)
