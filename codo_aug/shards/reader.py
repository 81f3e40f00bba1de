"""Read WebDataset shards back: expand a pattern, iterate records grouped by key."""

import glob
import tarfile
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .format import Record, decode_record


def expand_shards(pattern: str) -> list[str]:
    """Sorted shard paths matching a glob `pattern` (or a directory: its *.tar); InputError when none."""
    if Path(pattern).is_dir():
        pattern = str(Path(pattern) / "*.tar")
    paths = sorted(p for p in glob.glob(pattern) if not Path(p).name.startswith("."))
    if not paths:
        raise InputError(f"no shards match {pattern!r}")
    return paths


def iter_members(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {suffix: bytes}) for each record of one tar, members grouped by the key before the first dot."""
    key, members = None, {}
    try:
        with tarfile.open(path, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                name = Path(info.name).name
                k, _, suffix = name.partition(".")
                if k != key and members:
                    yield key, members
                    members = {}
                key = k
                members[suffix] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"shard {path} is unreadable: {exc}") from None
    if members:
        yield key, members


def iter_records(paths: list[str]) -> Iterator[Record]:
    """Decoded records of the shards in `paths`, in order."""
    for path in paths:
        for key, members in iter_members(path):
            yield decode_record(key, members)
