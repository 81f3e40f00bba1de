"""Atomic file writes: readers see the old file or the whole new one, never half of it."""

import os
import re
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import RunError


def temp_name(name: str) -> str:
    """A hidden temporary name beside `name`, unique to this write (machine, process and a random tag), so
    that processes or machines writing the same file at once never share one."""
    return f".{name}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def temp_pattern(name: str) -> str:
    """The glob of `temp_name(name)`'s names (`name` may hold wildcards): what a killed write leaves."""
    return f".{name}.*.tmp"


_PROCESS = re.compile(r"\.(\d+)\.[0-9a-f]{8}\.tmp$")


def temp_target(temp: str, suffix: str) -> str:
    """The file name (ending in `suffix`) a `temp_name` is written for: '.codo-000001.tar.<...>.tmp' ->
    'codo-000001.tar'."""
    return temp.rpartition("/")[2][1:].split(suffix + ".", 1)[0] + suffix


def _local_writer(temp: str) -> int | None:
    """The id of the process of this machine that `temp_name`'s file `temp` was named for; None when
    another machine (or no `temp_name`) named it."""
    found = _PROCESS.search(temp)
    if found is None or not temp[:found.start()].endswith("." + socket.gethostname()):
        return None
    return int(found.group(1))


def _running(pid: int) -> bool:
    """Whether process `pid` of this machine exists and has not ended: a killed worker stays a zombie until
    its new parent reaps it, and a resume started at once must not take it for a live writer."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` has ended but not been reaped (state Z in /proc; False where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def left_by_dead_process(temp: str) -> bool:
    """Whether `temp_name`'s file `temp` was written by a process of this machine that has ended: a
    killed write's leftover, which no running process will finish or remove."""
    pid = _local_writer(temp)
    return pid is not None and not _running(pid)


def in_flight_here(temp: str) -> bool:
    """Whether a running process of this machine may be writing `temp_name`'s file `temp` (a second job
    writing the same files, e.g. with the same node rank): it renames or removes it itself, so a job
    clearing its leftovers leaves it alone."""
    pid = _local_writer(temp)
    return pid is not None and _running(pid)


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Write through a hidden temporary file beside `path`; fsync and rename it into place on success.

    On any error (or interrupt) the temporary file is removed and `path` is left as it was. A temporary
    file that another process removed meanwhile is a one-line RunError, not a missing-file traceback.
    """
    tmp = path.with_name(temp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            raise RunError(f"{path}: another process removed its temporary file {tmp.name} while this one "
                           "wrote it (two jobs writing the same files, e.g. with the same --node-rank on two "
                           "machines?); run the same command again once the other has ended") from None
    finally:
        if tmp.exists():
            tmp.unlink()
