"""Read WebDataset shards back: expand a pattern, iterate records grouped by key, and say which
records (or shards) cannot be read instead of stopping at them."""

import glob
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .format import IMAGE_FORMATS, Record, decode_record
from .index import read_json
from .writer import INFO_FILE

#: Members of which a codo record has at least one: what tells a codo shard from another tar.
_CODO_MEMBERS = {"json", *(f"view0.{fmt}" for fmt in IMAGE_FORMATS)}


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be used (`key`), or a shard that cannot be read on (`key` ''): where and why."""

    shard: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"shard {self.shard}, key {self.key or '(none: the shard itself)'}: {self.reason}"


def expand_shards(pattern: str) -> list[str]:
    """Sorted shard paths matching a glob `pattern` (or a directory: its *.tar); InputError when none."""
    if Path(pattern).is_dir():
        pattern = str(Path(pattern) / "*.tar")
    paths = sorted(p for p in glob.glob(pattern) if not Path(p).name.startswith("."))
    if not paths:
        raise InputError(f"no shards match {pattern!r}")
    return paths


def _grouped(tar: tarfile.TarFile) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {suffix: bytes}) of a tar read as a stream, members grouped by the key before the first dot."""
    key, members = None, {}
    for info in tar:
        if not info.isfile():
            continue
        k, _, suffix = Path(info.name).name.partition(".")
        if k != key and members:
            yield key, members
            members = {}
        key = k
        members[suffix] = tar.extractfile(info).read()
    if members:
        yield key, members


def iter_members(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {suffix: bytes}) for each record of one tar; InputError when the tar cannot be read."""
    try:
        with tarfile.open(path, mode="r|") as tar:
            yield from _grouped(tar)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"shard {path} is unreadable: {exc}") from None


def read_shard(path: str) -> Iterator[tuple[str, str, dict[str, bytes]] | BadRecord]:
    """(path, key, members) for each record of one tar, then a BadRecord for the shard when it cannot
    be read on (not a tar, truncated) or is not codo's (its first record has no codo member)."""
    key = None
    try:
        with tarfile.open(path, mode="r|") as tar:
            for n, (key, members) in enumerate(_grouped(tar)):
                if n == 0 and not _CODO_MEMBERS & members.keys():
                    reason = f"not a codo shard (its first record, {key!r}, has no .json or view0 image)"
                    yield BadRecord(path, "", reason)
                    return
                yield path, key, members
    except (tarfile.TarError, OSError) as exc:
        where = f" after key {key}" if key else ""
        yield BadRecord(path, "", f"unreadable{where} ({type(exc).__name__}: {exc})")


def read_piece(path: str, first: int,
               stop: int | None) -> Iterator[tuple[str, str, dict[str, bytes]] | BadRecord]:
    """read_shard's items for records first..stop-1 of one tar (stop None: to its end); the records before
    `first` are read past without being decoded, and a BadRecord for the shard is kept wherever it falls."""
    if stop is not None and first >= stop:
        return
    for n, item in enumerate(read_shard(path)):
        if n >= first or isinstance(item, BadRecord):
            yield item
        if stop is not None and n + 1 >= stop:
            return


def shard_sizes(paths: list[str]) -> list[int]:
    """Records per shard: from the `_info.json` next to a shard when it lists it, else counted by reading."""
    listed: dict[Path, dict] = {}
    sizes = []
    for path in map(Path, paths):
        if path.parent not in listed:
            info = read_json(path.parent / INFO_FILE) or {}
            listed[path.parent] = {e.get("name"): e.get("samples") for e in info.get("shards", [])
                                   if isinstance(e, dict)}
        size = listed[path.parent].get(path.name)
        sizes.append(size if isinstance(size, int) else
                     sum(1 for item in read_shard(str(path)) if not isinstance(item, BadRecord)))
    return sizes


def iter_records(paths: list[str]) -> Iterator[Record]:
    """Decoded records of the shards in `paths`, in order."""
    for path in paths:
        for key, members in iter_members(path):
            yield decode_record(key, members)
