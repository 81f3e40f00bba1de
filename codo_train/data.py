"""Training input: endless batches from shards (epoch after epoch) and pixel normalisation."""

from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch.utils.data import DataLoader

from codo_aug.dataset import Batch, CoDoDataset, collate
from codo_aug.errors import RunError
from codo_aug.shards.dataset import ShardDataset

#: torchvision's ImageNet pixel mean and std (RGB, 0..1): detectors fine-tuned from these weights use them.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


@dataclass
class DataPosition:
    """Where the input stream stands: the epoch and the batches each DataLoader worker has delivered."""

    epoch: int = 0
    consumed: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "consumed": list(self.consumed)}

    def advance(self, worker: int) -> None:
        self.consumed += [0] * (worker + 1 - len(self.consumed))
        self.consumed[worker] += 1


def endless_batches(dataset: ShardDataset, batch_size: int, workers: int,
                    position: DataPosition) -> Iterator[Batch]:
    """Full batches, epoch after epoch, from `position` on; `position` is kept up to date as batches go out."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, drop_last=True)
    dataset.resume(position.epoch, [n * batch_size for n in position.consumed])
    while True:
        delivered = False
        for batch in loader:
            delivered = True
            position.advance(batch.worker)
            yield batch
        if not delivered and not any(position.consumed):
            raise RunError(f"the shards hold fewer samples than one batch of {batch_size} (per worker)")
        position.epoch, position.consumed = position.epoch + 1, []
        dataset.set_epoch(position.epoch)


class _RankIndices:
    """Sample indices for one rank: batch b of rank r holds samples (b * world + r) * B + 0..B-1."""

    def __init__(self, first_batch: int, batch_size: int, rank: int, world: int):
        self.first, self.size, self.rank, self.world = first_batch, batch_size, rank, world

    def __iter__(self) -> Iterator[int]:
        b = self.first
        while True:
            base = (b * self.world + self.rank) * self.size
            yield from range(base, base + self.size)
            b += 1


def online_batches(dataset: CoDoDataset, batch_size: int, workers: int, position: DataPosition,
                   rank: int = 0, world: int = 1) -> Iterator[Batch]:
    """Batches of online samples, disjoint across ranks (every index defines a sample, so there are no
    epochs), from `position` on."""
    sampler = _RankIndices(sum(position.consumed), batch_size, rank, world)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, sampler=sampler)
    for batch in loader:
        position.advance(0)
        yield batch


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
