"""The trainer's batch: codo_aug's Batch plus what a step would otherwise work out on the device with
host synchronisations (nonzero, .item()), computed on the host where the batch is collated (in the
DataLoader worker): each view pair's matched rows, each RoI's FPN level, the rows each level pools and
the RoI count per level. Records read without pixels (ShardDataset(pixels=False)) bring their views'
encoded bytes and photometric draws instead, and online samples rendered with deferred photometrics
(CoDoDataset(defer_photometrics=True)) their draws: decoded and applied when the batch moves to its
device."""

from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from codo_aug.dataset import Batch, collate
from codo_aug.errors import RunError
from codo_aug.recipes.recipe import PhotoDraw

from .models.levels import batch_levels, level_counts, level_rows
from .pairs import pair_rows


@dataclass
class TrainBatch(Batch):
    """`pairs[(a, b)]`: rows (of views a and b) of the same instance of the same image; in `size` mode
    `levels[j]` each RoI's level and `level_rows[j][k]` the rows LEVELS[k] pools (None in `all` mode);
    `level_counts`: RoIs per level over the batch's views (every RoI at every level in `all` mode).
    `encoded[j]`: each image's encoded view j, to decode on the device (`views` are then stand-ins of the
    right shape that hold no memory), and `photo[j]` each image's draws still to apply to view j (records
    read without pixels, online samples with deferred photometrics; else None)."""

    pairs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = None
    levels: list[torch.Tensor] | None = None
    level_rows: list[list[torch.Tensor]] | None = None
    level_counts: torch.Tensor | None = None
    encoded: list[list[np.ndarray]] | None = None
    photo: list[list[PhotoDraw]] | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor], host: bool = True) -> "TrainBatch":
        """The batch with `fn` applied to its tensors (`level_counts`, a host metric, only with `host`;
        stand-in views never)."""
        kept = {"level_counts"} if not host else set()
        kept |= {"views"} if self.encoded is not None else set()
        return TrainBatch(**{f.name: getattr(self, f.name) if f.name in kept
                             else _map(getattr(self, f.name), fn) for f in fields(self)})

    def tensors(self) -> Iterator[torch.Tensor]:
        """Every tensor the batch holds."""
        for f in fields(self):
            yield from _tensors(getattr(self, f.name))

    def to(self, device: torch.device) -> "TrainBatch":
        """The batch on `device`, copied without blocking where its memory is pinned (`level_counts`
        stays); encoded views decoded there, and their photometric draws applied."""
        moved = self.map(lambda t: t.to(device, non_blocking=True), host=False)
        if self.encoded is None and self.photo is None:
            return moved
        from .device_decode import apply_photo_tensor, decode_views  # torchvision.io: only when used

        views = moved.views
        try:
            if self.encoded is not None:
                views = [decode_views(images, device) for images in self.encoded]
        except (RuntimeError, ValueError) as exc:
            raise RunError(f"the views of samples {', '.join(self.keys or [])} do not decode on {device} "
                           f"({type(exc).__name__}: {exc}); `codo-aug verify` the shards") from None
        if self.photo is not None:
            views = [apply_photo_tensor(v, draws) for v, draws in zip(views, self.photo)]
        return replace(moved, views=views, encoded=None, photo=None)

    def pin_memory(self) -> "TrainBatch":
        """The batch in page-locked memory (what a DataLoader with pin_memory calls), for async copies."""
        return self.map(torch.Tensor.pin_memory)


def _tensors(value) -> Iterator[torch.Tensor]:
    """The tensors in `value`, through lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple, dict)):
        for v in value.values() if isinstance(value, dict) else value:
            yield from _tensors(v)


def _map(value, fn: Callable[[torch.Tensor], torch.Tensor]):
    """`value` with `fn` applied to each tensor in it, through lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return value


def _batch_fields(batch: Batch) -> dict:
    """codo_aug's Batch fields of `batch`, to build a TrainBatch on."""
    return {f.name: getattr(batch, f.name) for f in fields(Batch)}


def train_collate(samples: list, level_rule: str, level_mode: str, all_pairs: bool = False,
                  classes: Sequence[str] | None = None) -> TrainBatch | None:
    """codo_aug's collate (with `classes`, each RoI's class index), then the pairs and levels a step uses;
    records without pixels keep their views' bytes for the device (`encoded`), and the draws still to
    apply (records without pixels, samples rendered with deferred photometrics) travel in `photo`."""
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    encoded = samples[0].views[0].image.ndim == 1
    base = collate([_pixel_stand_in(s) for s in samples] if encoded else samples, classes, deferred=True)
    later = {}
    if getattr(samples[0], "photo", None) is not None:
        later["photo"] = [list(p) for p in zip(*(s.photo for s in samples))]
    if encoded:
        later["encoded"] = [[s.views[j].image for s in samples] for j in range(len(samples[0].views))]
        base.views = [torch.zeros((), dtype=torch.uint8).expand(len(samples), 3, view["size"], view["size"])
                      for view in samples[0].meta["views"]]
    pairs = pair_rows(base.img, base.ids, all_pairs)
    levels = batch_levels(base.views, base.rois, level_rule) if level_mode == "size" else None
    return TrainBatch(**_batch_fields(base), pairs=pairs, levels=levels,
                      level_rows=None if levels is None else [level_rows(lv) for lv in levels],
                      level_counts=level_counts(levels, sum(len(i) for i in base.ids)), **later)


_PIXEL = np.zeros((1, 1, 3), np.uint8)


def _pixel_stand_in(record):
    """A record read without pixels, each view's bytes replaced by one pixel: what collate stacks."""
    return replace(record, views=[replace(v, image=_PIXEL) for v in record.views])


def collate_for(level_rule: str, level_mode: str, all_pairs: bool, classes: Sequence[str] | None):
    """The collate function of a run's DataLoader (picklable, for worker processes)."""
    return partial(train_collate, level_rule=level_rule, level_mode=level_mode, all_pairs=all_pairs,
                   classes=classes)
