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


def online_batches(dataset: CoDoDataset, batch_size: int, workers: int, position: DataPosition) -> Iterator[Batch]:
    """Batches of online samples: batch b holds samples b*B .. (b+1)*B-1 (every index defines a sample,
    so there are no epochs), from `position` on."""
    start = sum(position.consumed) * batch_size
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        sampler=range(start, len(dataset)))
    for batch in loader:
        position.advance(0)
        yield batch


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
