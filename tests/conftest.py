"""Shared fixtures: a private codo cache per test session, and one small set of sample shards."""

import os
from pathlib import Path

import pytest

from .helpers import cli


@pytest.fixture(scope="session", autouse=True)
def codo_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("codo-cache")
    old = os.environ.get("CODO_CACHE")
    os.environ["CODO_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("CODO_CACHE", None)
    else:
        os.environ["CODO_CACHE"] = old


@pytest.fixture(scope="session")
def sample_shards(tmp_path_factory) -> Path:
    """48 samples of the built-in sample data in 3 shards, seed 0 (made once per session)."""
    out = tmp_path_factory.mktemp("shards") / "sample"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "48", "--shard-size", "16", "--seed", "0", check=True)
    return out
