"""Where codo keeps what it derives and can make again (the built-in sample data, fetched store parts)."""

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where codo caches derived data: $CODO_CACHE, else ~/.cache/codo."""
    return Path(os.environ.get("CODO_CACHE") or Path.home() / ".cache" / "codo")
