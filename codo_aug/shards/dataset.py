"""ShardDataset: stream shard records for training, split over ranks and DataLoader workers.

Shards are dealt round-robin to (rank, worker) slots after a per-epoch shuffle of their order, so
in one epoch every sample is read exactly once across all ranks and workers; a buffer shuffles
samples within a slot. The split and shuffles depend only on (seed, epoch).
"""

import itertools
from typing import Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from ..params.photometric import policy_for, sample_photo
from ..render.compose import View
from ..render.photometric import apply_photo
from ..rng import PHOTO_STREAM, SHARD_ORDER_STREAM, SHUFFLE_STREAM, rng_for
from .format import Record, decode_record
from .reader import expand_shards, iter_members


def _dist_default(rank: int | None, world_size: int | None) -> tuple[int, int]:
    active = dist.is_available() and dist.is_initialized()
    rank = rank if rank is not None else (dist.get_rank() if active else 0)
    world_size = world_size if world_size is not None else (dist.get_world_size() if active else 1)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} must be in 0..world_size-1 (world_size {world_size})")
    return rank, world_size


def shuffled(items: Iterator, size: int, rng: np.random.Generator) -> Iterator:
    """Items in a buffer-shuffled order: hold `size`, emit a random one as each new one arrives."""
    buffer: list = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        k = int(rng.integers(size))
        buffer[k], item = item, buffer[k]
        yield item
    rng.shuffle(buffer)
    yield from buffer


class ShardDataset(IterableDataset):
    """Records (views, boxes, RoIs, ids, `__key__`) of WebDataset shards, one pass per epoch.

    `rank`/`world_size` default to torch.distributed's. `shuffle` is the buffer size (0: keep order,
    shards too). `photometric` ('soco', 'mocov2') applies fresh colour/blur/solarize draws per epoch,
    for shards synthesised with `photometric = "none"`. Call `set_epoch` before each epoch.
    """

    def __init__(self, urls: str | list[str], rank: int | None = None, world_size: int | None = None,
                 shuffle: int = 1000, seed: int = 0, photometric: str | None = None):
        super().__init__()
        self.paths = expand_shards(urls) if isinstance(urls, str) else list(urls)
        self.rank, self.world_size = _dist_default(rank, world_size)
        self.shuffle, self.seed, self.photometric = shuffle, seed, photometric
        self.epoch = 0
        self._skip: tuple[int, list[int]] = (-1, [])  # (epoch, records to skip per worker), see resume()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def slot_shards(self, worker: int, workers: int) -> list[str]:
        """The shards of (this rank, `worker`) in this epoch."""
        order = np.arange(len(self.paths))
        if self.shuffle:
            order = rng_for(self.seed, SHARD_ORDER_STREAM, self.epoch).permutation(len(self.paths))
        slot, slots = self.rank * workers + worker, self.world_size * workers
        return [self.paths[i] for k, i in enumerate(order) if k % slots == slot]

    def _fresh_photometrics(self, rec: Record) -> Record:
        rng = rng_for(self.seed, PHOTO_STREAM, self.epoch, int(rec.meta["index"]))
        views = [View(apply_photo(v.image, sample_photo(rng, policy_for(self.photometric, j), v.image.shape[0])),
                      v.boxes, v.rois, v.ids) for j, v in enumerate(rec.views)]
        return Record(rec.key, views, rec.meta)

    def resume(self, epoch: int, skip: list[int]) -> None:
        """Continue epoch `epoch` after the first `skip[w]` records of each worker w (as already read)."""
        self.epoch = epoch
        self._skip = (epoch, list(skip))

    def __iter__(self) -> Iterator[Record]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        raw = ((key, members) for path in self.slot_shards(worker, workers) for key, members in iter_members(path))
        if self.shuffle > 1:
            slot = self.rank * workers + worker
            raw = shuffled(raw, self.shuffle, rng_for(self.seed, SHUFFLE_STREAM, self.epoch, slot))
        epoch, skip = self._skip
        if epoch == self.epoch and worker < len(skip):
            raw = itertools.islice(raw, skip[worker], None)  # skipped records are never decoded
        for key, members in raw:
            rec = decode_record(key, members)
            yield self._fresh_photometrics(rec) if self.photometric else rec
