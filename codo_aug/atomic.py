"""Atomic file writes: readers see the old file or the whole new one, never half of it."""

import os
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def atomic_open(path: Path) -> Iterator[BinaryIO]:
    """Write through a hidden temporary file beside `path`; fsync and rename it into place on success.

    On any error (or interrupt) the temporary file is removed and `path` is left as it was.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
