"""Training input: endless batches from shards (epoch after epoch) and pixel normalisation."""

from typing import Iterator

import torch
from torch.utils.data import DataLoader

from codo_aug.dataset import Batch, collate
from codo_aug.errors import RunError
from codo_aug.shards.dataset import ShardDataset

#: torchvision's ImageNet pixel mean and std (RGB, 0..1): detectors fine-tuned from these weights use them.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


def endless_batches(dataset: ShardDataset, batch_size: int, workers: int) -> Iterator[Batch]:
    """Full batches, epoch after epoch (each epoch reshuffled by `set_epoch`)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, drop_last=True)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise RunError(f"the shards hold fewer samples than one batch of {batch_size} (per worker)")
        epoch += 1


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
