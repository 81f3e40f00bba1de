"""Atomic file writes: readers see the old file or the whole new one, never half of it."""

import os
import re
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


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


def left_by_dead_process(temp: str) -> bool:
    """Whether `temp_name`'s file `temp` was written by a process of this machine that has ended: a
    killed write's leftover, which no running process will finish or remove."""
    found = _PROCESS.search(temp)
    if found is None or not temp[:found.start()].endswith("." + socket.gethostname()):
        return False
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Write through a hidden temporary file beside `path`; fsync and rename it into place on success.

    On any error (or interrupt) the temporary file is removed and `path` is left as it was.
    """
    tmp = path.with_name(temp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
