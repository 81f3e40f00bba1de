"""Training data: an endless stream of shard records, split across DataLoader workers, and its collate."""

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from codo_aug.rng import rng_for
from codo_aug.shards.format import decode_record
from codo_aug.shards.reader import iter_members

#: torchvision's ImageNet pixel mean and std (RGB, 0..1): detectors fine-tuned from these weights use them.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
_SHUFFLE_STREAM = 1


@dataclass
class Item:
    """One sample as tensors: per view an image (3xSxS uint8), RoIs (Nx4) and instance ids (N)."""

    images: list[torch.Tensor]
    rois: list[torch.Tensor]
    ids: list[torch.Tensor]


@dataclass
class Batch:
    """Per view: stacked images (Bx3xSxS), each image's RoIs, and for the concatenated RoIs their image and id."""

    views: list[torch.Tensor]
    rois: list[list[torch.Tensor]]
    img: list[torch.Tensor]
    ids: list[torch.Tensor]

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            [v.to(device, non_blocking=True) for v in self.views],
            [[r.to(device) for r in rs] for rs in self.rois],
            [t.to(device) for t in self.img],
            [t.to(device) for t in self.ids],
        )


def record_to_item(key: str, members: dict[str, bytes]) -> Item:
    rec = decode_record(key, members)
    n_views = len(rec.images)
    return Item(
        [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1))) for im in rec.images],
        [torch.from_numpy(rec.boxes(j, "rois")) for j in range(n_views)],
        [torch.from_numpy(rec.ids(j)) for j in range(n_views)],
    )


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
                        yield record_to_item(key, members)
                    n += 1
            epoch += 1


def collate(items: list[Item]) -> Batch:
    n_views = len(items[0].images)
    views, rois, img, ids = [], [], [], []
    for j in range(n_views):
        views.append(torch.stack([it.images[j] for it in items]))
        rois.append([it.rois[j] for it in items])
        img.append(torch.cat([torch.full((len(it.ids[j]),), b, dtype=torch.int64) for b, it in enumerate(items)]))
        ids.append(torch.cat([it.ids[j] for it in items]))
    return Batch(views, rois, img, ids)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
