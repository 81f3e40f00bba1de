"""Write one WebDataset tar shard, deterministically and atomically, hashing it as it is written.

Tar headers carry fixed mtime/owner/mode so the same samples give the same bytes; the shard appears
under its name only when complete (renamed into place locally, uploaded whole to object storage).
"""

import hashlib
import io
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterable

from ..io.storage import Folder

SHARD_PREFIX = "codo"
INFO_FILE = "_info.json"


def shard_name(shard: int, prefix: str = SHARD_PREFIX) -> str:
    return f"{prefix}-{shard:06d}.tar"


@dataclass(frozen=True)
class ShardStats:
    """What a finished shard holds: its per-shard index entry."""

    name: str
    samples: int
    bytes: int
    sha256: str


class _Hashing:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.size


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_shard(out: Folder, name: str, records: Iterable[list[tuple[str, bytes]]],
                before_commit: Callable[[ShardStats], None] = lambda stats: None) -> ShardStats:
    """Write `records` (each a list of (member, bytes)) as shard `name` of `out`, complete or not at all.

    `before_commit(stats)` runs once the data is complete but before the shard appears under its
    name, so whatever it records (an index entry) exists for every visible shard.
    """
    count = 0
    with out.writer(name) as fh:
        hashing = _Hashing(fh)
        with tarfile.open(fileobj=hashing, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for members in records:
                for member, data in members:
                    tar.addfile(_tarinfo(member, len(data)), io.BytesIO(data))
                count += 1
        stats = ShardStats(name, count, hashing.size, hashing.sha.hexdigest())
        before_commit(stats)
    return stats


def sha256_stream(fh: BinaryIO) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()
