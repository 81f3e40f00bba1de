"""Training input: endless batches from shards (epoch after epoch) or online synthesis, the position a
resumed run continues from, and pixel normalisation.

Bad shard records are skipped, named in a warning (once per shard and reason: every record of a shard
whose bytes differ from its `_info.json` fails for one reason) and counted; too many of them stop the run.
"""

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset

from codo_aug.dataset import Batch, CoDoDataset, collate
from codo_aug.errors import RunError
from codo_aug.shards.dataset import ShardDataset
from codo_aug.shards.reader import BadRecord, warn_once

#: torchvision's ImageNet pixel mean and std (RGB, 0..1): detectors fine-tuned from these weights use them.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)
#: A run stops when more than this fraction of the shard records it read are bad ...
MAX_BAD_FRACTION = 0.01
#: ... once it has read this many (fewer say little about the whole).
MIN_RECORDS_CHECKED = 100

log = logging.getLogger("codo_train")


@dataclass
class Delivery:
    """What a DataLoader worker hands over: a batch of good records (None once its records are all
    read) and the records it read for it, good and bad, bad ones listed."""

    worker: int
    read: int
    bad: list[BadRecord]
    batch: Batch | None

    def pin_memory(self) -> "Delivery":
        """The delivery with its batch in page-locked memory (DataLoader's pin_memory calls this)."""
        return replace(self, batch=None if self.batch is None else self.batch.pin_memory())


@dataclass
class DataPosition:
    """Where the input stream stands, for an exact resume: the epoch, the records (good and bad) each
    worker has read in it, the worker whose delivery comes next, and the run's records read and bad
    records met (every epoch counts its own), with the shard of the first bad one."""

    epoch: int = 0
    read: list[int] = field(default_factory=list)
    next_worker: int = 0
    records: int = 0
    bad: int = 0
    first_bad: str = ""

    @classmethod
    def from_dict(cls, data: dict, batch_size: int) -> "DataPosition":
        """The position a checkpoint holds; older ones counted batches per worker ('consumed')."""
        data = dict(data)
        if "consumed" in data:
            data["read"] = [n * batch_size for n in data.pop("consumed")]
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    def advance(self, worker: int, workers: int, read: int, bad: list[BadRecord]) -> None:
        self.read += [0] * (worker + 1 - len(self.read))
        self.read[worker] += read
        self.next_worker = (worker + 1) % workers
        self.records += read
        self.bad += len(bad)
        self.first_bad = self.first_bad or (bad[0].shard if bad else "")

    def next_epoch(self) -> None:
        self.epoch, self.read, self.next_worker = self.epoch + 1, [], 0


class _Deliveries(IterableDataset):
    """A worker's good records in batches (made by `collate_fn`), each with the records read for it; a last
    delivery without a batch counts what was read after the last full batch. Each pass is the next epoch
    from `first_epoch` on, counted where the pass runs: persistent DataLoader workers keep their own copy
    of the dataset, which a set_epoch() in the main process would never reach."""

    def __init__(self, dataset: ShardDataset, batch_size: int, collate_fn: Callable[[list], Batch | None],
                 first_epoch: int):
        super().__init__()
        self.dataset, self.batch_size, self.collate_fn = dataset, batch_size, collate_fn
        self.epoch = first_epoch

    def __iter__(self) -> Iterator[Delivery]:
        self.dataset.set_epoch(self.epoch)
        self.epoch += 1
        worker, _ = self.dataset.this_worker()
        good, read, bad = [], 0, []
        for item in self.dataset.records():
            read += 1
            (bad if isinstance(item, BadRecord) else good).append(item)
            if len(good) == self.batch_size:
                yield Delivery(worker, read, bad, self.collate_fn(good))
                good, read, bad = [], 0, []
        yield Delivery(worker, read, bad, None)


def _account(d: Delivery, position: DataPosition, workers: int, warned: set[tuple[str, str]],
             max_bad_fraction: float) -> None:
    """Move `position` past delivery `d`, warn once of each (shard, reason) of its bad records, and
    RunError once enough records were read and more than `max_bad_fraction` of them are bad."""
    position.advance(d.worker, workers, d.read, d.bad)
    for bad in d.bad:
        warn_once(bad, warned, log)
    if position.records >= MIN_RECORDS_CHECKED and position.bad > max_bad_fraction * position.records:
        raise RunError(f"{position.bad} of {position.records} shard records read are bad, more than "
                       f"{max_bad_fraction:.1%}; the first is in {position.first_bad} (see the warnings)")


def _no_batch(batch_size: int, position: DataPosition) -> str:
    if position.bad:
        return (f"no batch of {batch_size} good samples: {position.bad} of {position.records} shard records "
                f"read are bad, the first in {position.first_bad} (see the warnings)")
    return f"the shards hold fewer samples than one batch of {batch_size} (per worker)"


def loader_options(workers: int, pin: bool = False, prefetch: int = 2) -> dict:
    """DataLoader settings of a training stream: `workers` processes that persist across epochs, each
    `prefetch` batches ahead, and (`pin`, for CUDA) batches in page-locked memory for async copies."""
    ahead = {"persistent_workers": True, "prefetch_factor": prefetch} if workers else {}
    return {"num_workers": workers, "pin_memory": pin, **ahead}


def endless_batches(dataset: ShardDataset, batch_size: int, workers: int, position: DataPosition,
                    max_bad_fraction: float = MAX_BAD_FRACTION,
                    collate_fn: Callable[[list], Batch | None] = collate, pin: bool = False,
                    prefetch: int = 2) -> Iterator[Batch]:
    """Full batches of good records (made by `collate_fn`, in the workers), epoch after epoch, from
    `position` on; `position` is kept up to date as batches go out. Each bad record is counted, and named
    in a warning once per shard and reason. `pin` and `prefetch`: loader_options."""
    loader = DataLoader(_Deliveries(dataset, batch_size, collate_fn, position.epoch), batch_size=None,
                        **loader_options(workers, pin, prefetch))
    dataset.resume(position.epoch, position.read, position.next_worker)
    warned: set[tuple[str, str]] = set()
    while True:
        started = any(position.read)  # resumed in an epoch that has delivered batches
        delivered = False
        for d in loader:
            _account(d, position, max(workers, 1), warned, max_bad_fraction)
            if d.batch is not None:
                delivered = True
                yield d.batch
        if not (delivered or started):
            raise RunError(_no_batch(batch_size, position))
        position.next_epoch()


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
                   rank: int = 0, world: int = 1,
                   collate_fn: Callable[[list], Batch | None] = collate, pin: bool = False,
                   prefetch: int = 2) -> Iterator[Batch]:
    """Batches of online samples (made by `collate_fn`, in the workers), disjoint across ranks (every
    index defines a sample, so there are no epochs), from `position` on. `pin`, `prefetch`: loader_options."""
    sampler = _RankIndices(sum(position.read) // batch_size, batch_size, rank, world)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, sampler=sampler,
                        **loader_options(workers, pin, prefetch))
    for batch in loader:
        position.advance(0, 1, batch_size, [])
        yield batch


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 Bx3xHxW -> float, scaled to 0..1 and standardised with torchvision's mean and std."""
    mean = torch.tensor(PIXEL_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std

