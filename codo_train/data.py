"""Training data: an endless stream of shard records, split across DataLoader workers."""

import torch
from torch.utils.data import IterableDataset, get_worker_info

from codo_aug.rng import rng_for
from codo_aug.shards.format import decode_record
from codo_aug.shards.reader import iter_members

#: torchvision's ImageNet pixel mean and std (RGB, 0..1): detectors fine-tuned from these weights use them.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
_SHUFFLE_STREAM = 1


class ShardStream(IterableDataset):
    """Records of `paths`, epoch after epoch, shard order shuffled per epoch by (seed, epoch).

    Each DataLoader worker decodes every num_workers-th record, so workers never overlap.
    """

    def __init__(self, paths: list[str], seed: int = 0):
        super().__init__()
        self.paths = list(paths)
        self.seed = seed

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        epoch = 0
        while True:
            order = rng_for(self.seed, epoch, _SHUFFLE_STREAM).permutation(len(self.paths))
            n = 0
            for s in order:
                for key, members in iter_members(self.paths[s]):
                    if n % workers == worker:
                        yield decode_record(key, members)
                    n += 1
            epoch += 1


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
