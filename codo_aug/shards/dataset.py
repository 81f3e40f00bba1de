"""ShardDataset: stream shard records for training, split over ranks and DataLoader workers.

After a per-epoch shuffle of the shard order, `split="equal"` (the default: what DDP needs) lays the
shards end to end and gives every rank the same number of samples, total // world_size (the fewer than
world_size left over wait for the next epoch's order), its run cut into pieces at shard borders; `"shards"`
deals whole shards to ranks (uneven when the shard count does not divide, but no shard is read by two
ranks). A rank's pieces are dealt round-robin to its DataLoader workers, and a buffer shuffles samples
within a worker. In one epoch every sample is read at most once (exactly once with `"shards"`) across all
ranks and workers; the split and shuffles depend only on (seed, epoch). A record that cannot be
used (or a shard that cannot be read on) is skipped with a warning; `records()` shows them. A shard the
`_info.json` beside it lists is checked against its size and sha256 as it is read (`verify_shards`), and
its records are used only when it matches: damaged bytes inside a JPEG may still decode.
"""

import dataclasses
import itertools
import logging
from typing import Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from ..config import PHOTOMETRICS
from ..recipes.photometric import policy_for, sample_photo
from ..recipes.recipe import PhotoDraw
from ..render.photometric import apply_photo
from ..rng import PHOTO_STREAM, SHARD_ORDER_STREAM, SHUFFLE_STREAM, rng_for
from .format import Record, decode_record
from .reader import BadRecord, checkable, expand_shards, listed_entries, read_piece, shard_sizes, warn_once

log = logging.getLogger("codo_aug.shards")

#: How ShardDataset splits an epoch over ranks (see the module docstring).
SPLITS = ("equal", "shards")

#: A part of one shard: (shard index, first record, stop record or None for the shard's end).
Piece = tuple[int, int, int | None]


def equal_pieces(sizes: list[int], order: list[int], rank: int, world_size: int) -> list[Piece]:
    """Rank `rank`'s share of an epoch: the shards in `order` laid end to end, cut into `world_size` runs
    of sum(sizes) // world_size records (those left over belong to no rank), as pieces of shards."""
    share = sum(sizes) // world_size
    lo, hi, start, pieces = rank * share, (rank + 1) * share, 0, []
    for i in order:
        first, stop = max(lo, start), min(hi, start + sizes[i])
        if first < stop:
            pieces.append((i, first - start, stop - start))
        start += sizes[i]
    return pieces


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
    """Records (views, boxes, RoIs, ids, masks, `__key__`) of WebDataset shards, one pass per epoch.

    `rank`/`world_size` default to torch.distributed's. `shuffle` is the buffer size (0: keep order,
    shards too). `photometric` ('soco', 'mocov2'; 'none' or None: as stored) applies fresh colour/blur/
    solarize draws per epoch, for shards synthesised with `photometric = "none"`. `split`: "equal" (every
    rank the same number of samples; counts from `_info.json`, else read once) or "shards" (whole
    shards per rank). `pixels=False` leaves the view images encoded and masks undecoded (see
    `decode_record`) and the fresh photometric draws in `Record.photo`, not applied: the same draws, for
    codo_train.device_decode to decode and apply on the GPU. `verify_shards` (MosaicML Streaming's
    `validate_hash`): each shard listed in the `_info.json` beside it is hashed as it is read and its
    records held (a shard's piece in memory per worker) until its size and sha256 match, else they are
    BadRecords (no cost measurable beside decoding: BENCHMARKS.md); False reads shards unchecked. Call
    `set_epoch` before each epoch.
    """

    def __init__(self, urls: str | list[str], rank: int | None = None, world_size: int | None = None,
                 shuffle: int = 1000, seed: int = 0, photometric: str | None = None, split: str = "equal",
                 pixels: bool = True, verify_shards: bool = True):
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"invalid split={split!r}: must be one of {', '.join(SPLITS)}")
        if photometric is not None and photometric not in PHOTOMETRICS:
            raise ValueError(f"invalid photometric={photometric!r}: must be one of "
                             f"{', '.join(PHOTOMETRICS)} or None")
        self.paths = expand_shards(urls) if isinstance(urls, str) else list(urls)
        self.rank, self.world_size = _dist_default(rank, world_size)
        self.shuffle, self.seed = shuffle, seed
        self.photometric = None if photometric == "none" else photometric
        self.pixels = pixels
        equal = split == "equal" and self.world_size > 1
        entries = listed_entries(self.paths) if equal or verify_shards else []
        #: records per shard, for an equal split over several ranks (one rank takes whole shards)
        self.sizes = shard_sizes(self.paths, entries) if equal else None
        #: path -> its `_info.json` entry, for the shards checked as they are read
        self.expected = {p: e for p, e in zip(self.paths, entries) if verify_shards and checkable(e)}
        self.epoch = 0
        #: (epoch, records to skip per worker, first worker): see resume()
        self._resume: tuple[int, list[int], int] = (-1, [], 0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def slot_pieces(self, worker: int, workers: int) -> list[tuple[str, int, int | None]]:
        """(shard path, first record, stop) of what (this rank, `worker`) reads in this epoch."""
        order = list(range(len(self.paths)))
        if self.shuffle:
            rng = rng_for(self.seed, SHARD_ORDER_STREAM, self.epoch)
            order = [int(i) for i in rng.permutation(len(order))]
        if self.sizes is not None:
            pieces = equal_pieces(self.sizes, order, self.rank, self.world_size)
        else:
            pieces = [(i, 0, None) for k, i in enumerate(order) if k % self.world_size == self.rank]
        return [(self.paths[i], first, stop) for i, first, stop in pieces[worker::workers]]

    def _photo_draws(self, rec: Record, sides: list[int]) -> list[PhotoDraw]:
        """This epoch's fresh photometric draws for the views (of these sides) of `rec`, in view order."""
        index = rec.meta.get("index")
        if not isinstance(index, int):
            raise ValueError("the .json member has no sample 'index' (fresh photometrics are drawn by it)")
        rng = rng_for(self.seed, PHOTO_STREAM, self.epoch, index)
        return [sample_photo(rng, policy_for(self.photometric, j), side) for j, side in enumerate(sides)]

    def _fresh_photometrics(self, rec: Record) -> Record:
        if not self.pixels:
            sides = [v["size"] for v in rec.meta["views"]]  # checked by decode_record
            return dataclasses.replace(rec, photo=self._photo_draws(rec, sides))
        draws = self._photo_draws(rec, [v.image.shape[0] for v in rec.views])
        views = [dataclasses.replace(v, image=apply_photo(v.image, d)) for v, d in zip(rec.views, draws)]
        return dataclasses.replace(rec, views=views)

    def resume(self, epoch: int, skip: list[int], first_worker: int = 0) -> None:
        """Continue epoch `epoch` after the first `skip[w]` records (good and bad) of each worker w, with
        worker `first_worker` in the DataLoader's first place (the one whose batch would have come next)."""
        self.epoch = epoch
        self._resume = (epoch, list(skip), first_worker)

    def this_worker(self) -> tuple[int, int]:
        """(worker, workers) of the calling process: its DataLoader worker id, turned by `resume`'s
        `first_worker` in the resumed epoch; (0, 1) outside a DataLoader worker."""
        info = get_worker_info()
        if info is None:
            return 0, 1
        epoch, _, first = self._resume
        return (info.id + first) % info.num_workers if epoch == self.epoch else info.id, info.num_workers

    def _decode(self, path: str, key: str, members: dict[str, bytes]) -> Record | BadRecord:
        try:
            rec = decode_record(key, members, self.pixels)
            return self._fresh_photometrics(rec) if self.photometric else rec
        except ValueError as exc:
            return BadRecord(path, key, str(exc))

    def records(self) -> Iterator[Record | BadRecord]:
        """This worker's records of the epoch in reading order, those that cannot be used as BadRecord;
        after a `resume`, from the first record not yet read (those skipped are never decoded)."""
        worker, workers = self.this_worker()
        raw = (item for path, first, stop in self.slot_pieces(worker, workers)
               for item in read_piece(path, first, stop, self.expected.get(path)))
        if self.shuffle > 1:
            slot = self.rank * workers + worker
            raw = shuffled(raw, self.shuffle, rng_for(self.seed, SHUFFLE_STREAM, self.epoch, slot))
        epoch, skip, _ = self._resume
        if epoch == self.epoch and worker < len(skip):
            raw = itertools.islice(raw, skip[worker], None)
        for item in raw:
            yield item if isinstance(item, BadRecord) else self._decode(*item)

    def __iter__(self) -> Iterator[Record]:
        warned: set[tuple[str, str]] = set()
        for item in self.records():
            if isinstance(item, BadRecord):
                warn_once(item, warned, log)
                continue
            yield item
