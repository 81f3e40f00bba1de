"""Read WebDataset shards back, from local files or URLs: expand a pattern, iterate records grouped by key
as a stream, and say which records (or shards) cannot be read instead of stopping at them."""

import glob
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from .format import IMAGE_FORMATS, Record, decode_record
from .index import read_json
from .storage import (expand_braces, folder_at, input_errors, is_url, local_path, open_stream,
                      remote_errors, split_location, url_fs)
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


def _has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _listed(folder: str) -> list[str]:
    """The shards of a URL prefix: those its `_info.json` lists (no listing needed: plain HTTP has none),
    else its *.tar."""
    where = folder_at(folder)
    info = read_json(where, INFO_FILE) or {}
    names = [e["name"] for e in info.get("shards", [])
             if isinstance(e, dict) and isinstance(e.get("name"), str)]
    return [where.child(n) for n in (names or where.names("*.tar")) if not n.startswith(".")]


def _expand_url(pattern: str) -> list[str]:
    urls = expand_braces(pattern)
    fs, _ = url_fs(urls[0])
    paths = [fs._strip_protocol(url) for url in urls]
    with input_errors(pattern):
        if len(urls) == 1 and not _has_glob(pattern) and not pattern.endswith(".tar"):
            return _listed(pattern)
        if _has_glob(pattern):
            return sorted({fs.unstrip_protocol(p) for path in paths for p in fs.glob(path)})
        if not fs.exists(paths[0]):  # a wrong bucket or prefix, before any training starts
            raise InputError(f"{urls[0]}: no such shard (missing, or not readable with these credentials)")
        return urls


def expand_shards(pattern: str) -> list[str]:
    """Shard paths or URLs of `pattern`: a glob, WebDataset braces ('codo-{000000..000099}.tar'), a folder
    (its *.tar) or a URL prefix (the shards its `_info.json` lists, else its *.tar); InputError when none."""
    pattern = local_path(pattern)
    if is_url(pattern):
        paths = _expand_url(pattern)
    elif Path(pattern).is_dir():
        paths = sorted(str(p) for p in Path(pattern).glob("*.tar") if not p.name.startswith("."))
    else:
        paths = sorted({p for part in expand_braces(pattern) for p in glob.glob(part)
                        if not Path(p).name.startswith(".")})
    if not paths:
        raise InputError(f"no shards match {pattern!r}")
    return paths


@contextmanager
def _open_tar(path: str) -> Iterator[tarfile.TarFile]:
    """A tar read as a stream (local file or URL), closed with its stream."""
    with open_stream(path) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        yield tar


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
        with _open_tar(path) as tar:
            yield from _grouped(tar)
    except (tarfile.TarError, *remote_errors()) as exc:
        raise InputError(f"shard {path} is unreadable: {exc}") from None


def read_shard(path: str) -> Iterator[tuple[str, str, dict[str, bytes]] | BadRecord]:
    """(path, key, members) for each record of one tar, then a BadRecord for the shard when it cannot
    be read on (not a tar, truncated) or is not codo's (its first record has no codo member)."""
    key = None
    try:
        with _open_tar(path) as tar:
            for n, (key, members) in enumerate(_grouped(tar)):
                if n == 0 and not _CODO_MEMBERS & members.keys():
                    reason = f"not a codo shard (its first record, {key!r}, has no .json or view0 image)"
                    yield BadRecord(path, "", reason)
                    return
                yield path, key, members
    except (tarfile.TarError, InputError, *remote_errors()) as exc:
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
    listed: dict[str, dict] = {}
    sizes = []
    for path in paths:
        folder, name = split_location(path)
        if folder not in listed:
            info = read_json(folder_at(folder), INFO_FILE) or {}
            listed[folder] = {e.get("name"): e.get("samples") for e in info.get("shards", [])
                              if isinstance(e, dict)}
        size = listed[folder].get(name)
        sizes.append(size if isinstance(size, int) else
                     sum(1 for item in read_shard(path) if not isinstance(item, BadRecord)))
    return sizes


def iter_records(paths: list[str]) -> Iterator[Record]:
    """Decoded records of the shards in `paths`, in order."""
    for path in paths:
        for key, members in iter_members(path):
            yield decode_record(key, members)
