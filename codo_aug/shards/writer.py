"""Write samples into WebDataset tar shards, deterministically and atomically.

Tar headers carry fixed mtime/owner/mode so the same samples give the same bytes; each shard is
written to a hidden temporary file and renamed into place only when complete.
"""

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..atomic import atomic_open

SHARD_PREFIX = "codo"
INFO_FILE = "_info.json"


def shard_name(shard: int, prefix: str = SHARD_PREFIX) -> str:
    return f"{prefix}-{shard:06d}.tar"


@dataclass
class ShardStats:
    """What a finished shard holds."""

    name: str
    samples: int
    bytes: int


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_shard(path: Path, records: Iterable[list[tuple[str, bytes]]]) -> ShardStats:
    """Write `records` (each a list of (member, bytes)) to `path` atomically."""
    count = 0
    with atomic_open(path) as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for members in records:
            for name, data in members:
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
            count += 1
    return ShardStats(path.name, count, path.stat().st_size)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON to `path` atomically, so readers never see half of it."""
    with atomic_open(path) as fh:
        fh.write((json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def write_shards(out: Path, num_samples: int, shard_size: int,
                 encode: Callable[[int], list[tuple[str, bytes]]],
                 on_sample: Callable[[], None] = lambda: None) -> list[ShardStats]:
    """Shard s holds samples [s*shard_size, (s+1)*shard_size); `encode(i)` gives sample i's members."""
    stats = []
    for shard, start in enumerate(range(0, num_samples, shard_size)):
        def records(start=start):
            for i in range(start, min(start + shard_size, num_samples)):
                yield encode(i)
                on_sample()
        stats.append(write_shard(out / shard_name(shard), records()))
    return stats
