"""Shared fixtures: a private codo cache per test session, one small set of sample shards (default views)
and one with small views for the trainer tests, and one small COCO set for fine-tuning."""

import os
from pathlib import Path

import pytest

from .helpers import cli

#: Under pytest-xdist (the README runs `-n 2`) the workers share the cores: each worker's torch, and the
#: CLIs it starts, get their share of threads, as OpenMP threads oversubscribing the cores made the suite
#: slower over two workers (1,232 s) than in one process (1,137 s); with the share, 897 s. A value the
#: user set stays. Set before any test module imports torch.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(max(1, _CORES // _WORKERS)))


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
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "48", "--shard-size", "16", "--seed", "0",
        check=True)
    return out


@pytest.fixture(scope="session")
def train_shards(tmp_path_factory) -> Path:
    """As sample_shards with views of 128/128/64 px: what the trainer tests train on (a third of the
    pixels of the default views, so a third of the CPU time per step)."""
    out = tmp_path_factory.mktemp("shards") / "train"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "48", "--shard-size", "16", "--seed", "0",
        "--set", "view_sizes=[128, 128, 64]", check=True)
    return out


@pytest.fixture(scope="session")
def coco_set(tmp_path_factory) -> str:
    """A 6-sample COCO set (two views of 128 and 96 px each) as finetune's JSON:IMAGES argument."""
    out = tmp_path_factory.mktemp("coco") / "set"
    cli("codo-aug", "synth", "--format", "coco", "--out", str(out), "--num-samples", "6",
        "--set", "view_sizes=[128, 96]", check=True)
    return f"{out / 'annotations' / 'instances.json'}:{out / 'images'}"


@pytest.fixture(scope="session")
def coco_val(tmp_path_factory) -> str:
    """A 2-sample COCO set (views of 96 and 64 px) to evaluate on: with random heads every image yields
    ~100 detections whose mask-head convs are most of a CPU evaluation, so tests evaluate on 4 images."""
    out = tmp_path_factory.mktemp("coco") / "val"
    cli("codo-aug", "synth", "--format", "coco", "--out", str(out), "--num-samples", "2", "--seed", "1",
        "--set", "view_sizes=[96, 64]", check=True)
    return f"{out / 'annotations' / 'instances.json'}:{out / 'images'}"
