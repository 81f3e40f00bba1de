"""Read WebDataset shards back, from local files or URLs: expand a pattern, iterate records grouped by key
as a stream, and say which records (or shards) cannot be read instead of stopping at them.

A folder (or URL prefix) with `_info.json` stands for the shards it lists: one that is gone is an
InputError before anything is read. Braces name shards that must all exist; a glob reads those there
are. A shard `_info.json` lists can be checked as it is read (read_piece's `expected`): its bytes are
hashed as they stream past, and its records come out only once its size and sha256 match the listing.
"""

import glob
import hashlib
import logging
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import InputError
from ..io.jsonfiles import read_json
from ..io.storage import (Folder, expand_braces, folder_at, input_errors, is_url, local_path, open_stream,
                          remote_errors, split_location, url_fs)
from .format import IMAGE_FORMATS, Record, decode_record
from .verify import check
from .writer import INFO_FILE

log = logging.getLogger("codo_aug.shards")

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


#: What read_shard and read_piece yield: (shard path, key, {suffix: bytes}) of a record, or a BadRecord.
Item = tuple[str, str, dict[str, bytes]] | BadRecord


def warn_once(bad: BadRecord, warned: set[tuple[str, str]], logger: logging.Logger) -> None:
    """Warn of `bad` unless a record of its shard was named for the same reason already (every record of a
    shard that differs from `_info.json` fails for one reason); `warned` keeps what was named."""
    if (bad.shard, bad.reason) not in warned:
        warned.add((bad.shard, bad.reason))
        logger.warning("skipped a bad sample: %s", bad)


def _has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _shown(where: Folder) -> set[str]:
    """The *.tar one listing of `where` shows; none where the storage lists nothing (plain HTTP may not)."""
    try:
        return set(where.names("*.tar"))
    except InputError:
        return set()


def _first_missing(where: Folder, names: list[str], shown: set[str]) -> str | None:
    """The first of `names` that `where` lacks: those its listing (`shown`) lacks, each asked for."""
    return next((n for n in names if n not in shown and not where.exists(n)), None)


def _listed(folder: str) -> list[str]:
    """The shards of a folder or URL prefix: those its `_info.json` lists (InputError naming the first that
    is gone; a warning names *.tar it does not list, which are not read), else its *.tar."""
    where = folder_at(folder)
    info = read_json(where, INFO_FILE) or {}
    names = [e["name"] for e in info.get("shards", [])
             if isinstance(e, dict) and isinstance(e.get("name"), str)]
    shown = _shown(where)
    if not names:
        return [where.child(n) for n in sorted(shown) if not n.startswith(".")]
    missing = _first_missing(where, names, shown)
    if missing is not None:
        raise InputError(f"shard {where.child(missing)} is listed in {where.child(INFO_FILE)} but missing: "
                         f"restore it (`codo-aug verify {where}` names every missing or changed shard), "
                         f"or give the shards to read by a glob ('{where.child('*.tar')}')")
    unlisted = sorted(n for n in shown - set(names) if not n.startswith("."))
    if unlisted:
        log.warning("%d *.tar in %s not listed in its %s are not read (%s); a glob reads them",
                    len(unlisted), where, INFO_FILE, ", ".join(unlisted[:3] + ["..."] * (len(unlisted) > 3)))
    return [where.child(n) for n in names]


def _named(pattern: str) -> list[str]:
    """The shards a path or a brace list names; InputError naming the first one that is missing."""
    paths = expand_braces(pattern)
    by_folder: dict[str, list[str]] = {}
    for path in paths:
        folder, name = split_location(path)
        by_folder.setdefault(folder, []).append(name)
    for folder, names in by_folder.items():
        where = folder_at(folder)
        missing = _first_missing(where, names, _shown(where))
        if missing is not None:
            raise InputError(f"no shards match {pattern!r}: {where.child(missing)} is missing or not "
                             "readable (braces name shards that must all exist; a glob reads those there)")
    return paths


def _globbed(pattern: str) -> list[str]:
    """The shards a glob matches (braces expanded first)."""
    parts = expand_braces(pattern)
    if not is_url(pattern):
        return sorted({p for part in parts for p in glob.glob(part) if not Path(p).name.startswith(".")})
    fs, _ = url_fs(parts[0])
    return sorted({fs.unstrip_protocol(p) for part in parts for p in fs.glob(fs._strip_protocol(part))})


def _is_folder(pattern: str) -> bool:
    """A folder, or a URL prefix (one location, not a .tar)."""
    if is_url(pattern):
        return len(expand_braces(pattern)) == 1 and not pattern.endswith(".tar")
    return Path(pattern).is_dir()


def expand_shards(pattern: str) -> list[str]:
    """Shard paths or URLs of `pattern`: a folder or URL prefix (the shards its `_info.json` lists, else
    its *.tar), a glob (what matches), or a path or WebDataset braces ('codo-{000000..000099}.tar', each
    named shard must exist); InputError when none, or when a listed or named shard is missing."""
    pattern = local_path(pattern)
    with input_errors(pattern):
        if _has_glob(pattern):
            paths = _globbed(pattern)
        elif _is_folder(pattern):
            paths = _listed(pattern)
        else:
            paths = _named(pattern)
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


class _Hashed:
    """A read stream that hashes and counts the bytes read through it (writer._Hashing's reading half)."""

    def __init__(self, fh: BinaryIO):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        self.size += len(data)
        return data

    def verdict(self, entry: dict) -> str | None:
        """Why the stream (read to its end first) is not the shard `entry` of `_info.json` lists, or None."""
        try:
            while self.read(1 << 20):
                pass
        except (InputError, *remote_errors()) as exc:
            return f"unreadable past its last record ({type(exc).__name__}: {exc})"
        problem = check(entry, self.size, self.sha.hexdigest)
        if problem is None:
            return None
        return f"the shard does not match {INFO_FILE}: {problem.kind} ({problem.detail})"


def _records(fh: BinaryIO | _Hashed, path: str, first: int, stop: int | None) -> Iterator[Item]:
    """Items of records first..stop-1 of the tar `fh` streams (the ones before read past, not decoded),
    then a BadRecord for the shard where it cannot be read on or is not codo's."""
    key = None
    try:
        with tarfile.open(fileobj=fh, mode="r|") as tar:
            for n, (key, members) in enumerate(_grouped(tar)):
                if n == 0 and not _CODO_MEMBERS & members.keys():
                    reason = f"not a codo shard (its first record, {key!r}, has no .json or view0 image)"
                    yield BadRecord(path, "", reason)
                    return
                if n >= first:
                    yield path, key, members
                if stop is not None and n + 1 >= stop:
                    return
    except (tarfile.TarError, InputError, *remote_errors()) as exc:
        where = f" after key {key}" if key else ""
        yield BadRecord(path, "", f"unreadable{where} ({type(exc).__name__}: {exc})")


def _checked(items: Iterator[Item], fh: _Hashed, entry: dict) -> list[Item]:
    """`items`, held until the shard's last byte is hashed; each record a BadRecord saying why when the
    shard differs from its `_info.json` `entry`."""
    held = list(items)
    reason = fh.verdict(entry)
    if reason is None:
        return held
    return [item if isinstance(item, BadRecord) else BadRecord(item[0], item[1], reason) for item in held]


def read_piece(path: str, first: int, stop: int | None, expected: dict | None = None) -> Iterator[Item]:
    """(path, key, members) for records first..stop-1 of one tar (stop None: to its end), then a BadRecord
    for the shard when it cannot be read on (not a tar, truncated) or is not codo's (its first record has
    no codo member). With `expected`, the shard's `_info.json` entry, the whole shard is read once and
    hashed, and the records come out once its size and sha256 match, else each as a BadRecord."""
    if stop is not None and first >= stop:
        return
    try:
        with open_stream(path) as raw:
            if expected is None:
                yield from _records(raw, path, first, stop)
                return
            fh = _Hashed(raw)
            items = _checked(_records(fh, path, first, stop), fh, expected)
    except (InputError, *remote_errors()) as exc:  # opening it
        yield BadRecord(path, "", f"unreadable ({type(exc).__name__}: {exc})")
        return
    yield from items


def read_shard(path: str) -> Iterator[Item]:
    """read_piece's items for every record of one tar, unchecked."""
    return read_piece(path, 0, None)


def checkable(entry: dict | None) -> dict | None:
    """`entry` (of `_info.json`) when read_piece can check a shard by it (its bytes and sha256), else None."""
    if not isinstance(entry, dict):
        return None
    return entry if isinstance(entry.get("bytes"), int) and isinstance(entry.get("sha256"), str) else None


def listed_entries(paths: list[str]) -> list[dict | None]:
    """Each shard's entry (name, samples, bytes, sha256) in the `_info.json` beside it; None where none
    lists it. Each folder's `_info.json` is read once."""
    listed: dict[str, dict] = {}
    entries = []
    for path in paths:
        folder, name = split_location(path)
        if folder not in listed:
            info = read_json(folder_at(folder), INFO_FILE) or {}
            listed[folder] = {e.get("name"): e for e in info.get("shards", []) if isinstance(e, dict)}
        entries.append(listed[folder].get(name))
    return entries


def shard_sizes(paths: list[str], entries: list[dict | None] | None = None) -> list[int]:
    """Records per shard: from its `_info.json` entry (`entries`: listed_entries' when not given) when there
    is one, else counted by reading."""
    entries = listed_entries(paths) if entries is None else entries
    return [e["samples"] if isinstance(e, dict) and isinstance(e.get("samples"), int) else
            sum(1 for item in read_shard(path) if not isinstance(item, BadRecord))
            for path, e in zip(paths, entries)]


def iter_records(paths: list[str]) -> Iterator[Record]:
    """Decoded records of the shards in `paths`, in order."""
    for path in paths:
        for key, members in iter_members(path):
            yield decode_record(key, members)
