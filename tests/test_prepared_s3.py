"""Prepared stores in object storage, against moto's S3 server on localhost: `codo-aug prepare --out
s3://...` writes the bytes a local prepare writes and resumes; `prepared:s3://...` feeds synth (the same
shards as the local stores give) and codo-train."""

import json
from functools import partial
from pathlib import Path

import pytest

from .helpers import cli
from .servers import s3_server
from .test_object_storage import names as storage_names
from .test_object_storage import objects as storage_objects
from .test_object_storage import tree

pytest.importorskip("s3fs")
pytest.importorskip("moto")

#: Its own bucket: moto keeps its buckets per process, and test_object_storage's may share a worker.
BUCKET = "codo-prepared"


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server with this module's bucket; the AWS environment points at it."""
    import fsspec

    with s3_server() as endpoint:
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET, exist_ok=True)
        yield endpoint


#: test_object_storage's helpers on this module's bucket
names, objects = partial(storage_names, bucket=BUCKET), partial(storage_objects, bucket=BUCKET)


ROLES = ("instances", "backgrounds")
PREPARE = ["--part-size", "4", "--set", "view_sizes=[64, 64]"]
SYNTH = ["--num-samples", "6", "--shard-size", "3", "--seed", "2", "--set", "view_sizes=[64, 64]"]


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    """The reference: the sample source's instances and backgrounds prepared into local folders."""
    root = tmp_path_factory.mktemp("stores")
    for role in ROLES:
        cli("codo-aug", "prepare", "sample", "--role", role, "--out", str(root / role), *PREPARE, check=True)
    return root


@pytest.fixture(scope="module")
def on_s3(s3, local) -> str:
    """The same two stores prepared into s3://BUCKET/stores/ROLE by the CLI."""
    prefix = f"s3://{BUCKET}/stores"
    for role in ROLES:
        done = cli("codo-aug", "prepare", "sample", "--role", role, "--out", f"{prefix}/{role}", *PREPARE,
                   check=True)
        assert f"to {prefix}/{role} (" in done.stderr, done.stderr
    return prefix


def test_prepare_to_s3_writes_the_bytes_of_a_local_store_and_resumes(on_s3, local):
    for role in ROLES:
        stored = objects(f"stores/{role}")
        assert stored == tree(local / role)
        manifest = json.loads(stored["prepared.json"])
        assert len(manifest["parts"]) >= 2 and manifest["role"] == role
    again = cli("codo-aug", "prepare", "sample", "--role", "instances", "--out", f"{on_s3}/instances",
                *PREPARE, check=True)
    parts = len(json.loads(objects("stores/instances")["prepared.json"])["parts"])
    assert f"({parts} already there)" in again.stderr, again.stderr
    assert objects("stores/instances") == tree(local / "instances")


def test_another_prepare_job_on_the_prefix_is_refused(on_s3):
    other = cli("codo-aug", "prepare", "sample", "--role", "instances", "--out", f"{on_s3}/instances",
                "--part-size", "5", "--set", "view_sizes=[64, 64]")
    assert other.returncode == 2 and "differs in: part_size" in other.stderr, other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


def test_synth_from_stores_in_s3_writes_the_shards_of_the_local_stores(on_s3, local, tmp_path, codo_cache):
    ref, out = tmp_path / "ref", tmp_path / "from-s3"
    cli("codo-aug", "synth", "--out", str(ref), "--instances", f"prepared:{local / 'instances'}",
        "--backgrounds", f"prepared:{local / 'backgrounds'}", *SYNTH, check=True)
    done = cli("codo-aug", "synth", "--out", str(out), "--instances", f"prepared:{on_s3}/instances",
               "--backgrounds", f"prepared:{on_s3}/backgrounds", *SYNTH, check=True)
    assert "wrote 6 samples in 2 shard(s)" in done.stderr, done.stderr
    shards = sorted(p.name for p in ref.glob("codo-*.tar"))
    assert len(shards) == 2 and [(out / n).read_bytes() for n in shards] == [(ref / n).read_bytes()
                                                                              for n in shards]
    info = json.loads((out / "_info.json").read_text())
    assert info["sources"]["instances"]["spec"] == f"prepared:{on_s3}/instances"
    fetched = sorted(p.name for p in (codo_cache / "prepared").rglob("part-*.bin"))
    assert fetched and set(fetched) <= {n for role in ROLES for n in names(f"stores/{role}")}


def test_a_cached_part_of_the_wrong_size_is_fetched_again(on_s3, local, codo_cache):
    from codo_aug.sources.spec import open_source

    def first_pixels(spec: str):
        source = open_source(spec, "instances")
        return source.pixels(0).copy(), source

    want, _ = first_pixels(f"prepared:{local / 'instances'}")
    got, source = first_pixels(f"prepared:{on_s3}/instances")
    cached = codo_cache / "prepared" / source.manifest_digest[:16] / "part-00000.bin"
    assert (got == want).all() and cached.stat().st_size == source.part_bytes[0]
    cached.write_bytes(cached.read_bytes()[:100])  # a cache cut short (a full disk, an edit)
    again, _ = first_pixels(f"prepared:{on_s3}/instances")
    assert (again == want).all() and cached.stat().st_size == source.part_bytes[0]
    assert not list(cached.parent.glob(".*.tmp"))


def test_a_store_prefix_that_is_not_a_store_is_a_one_line_error(on_s3, tmp_path):
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "x"), "--instances", f"prepared:{on_s3}/nothing",
               "--num-samples", "2")
    assert proc.returncode == 2 and "is not a prepared store" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_prepare_to_a_missing_bucket_is_refused_and_writes_nothing_here(s3, tmp_path):
    proc = cli("codo-aug", "prepare", "sample", "--role", "instances", "--out", "s3://no-such-bucket/x")
    assert proc.returncode == 2 and "bucket 'no-such-bucket' does not exist" in proc.stderr, proc.stderr
    assert not Path("s3:").exists()


@pytest.mark.slow
def test_codo_train_runs_on_stores_in_s3(on_s3, tmp_path):
    proc = cli("codo-train", "run", "--instances", f"prepared:{on_s3}/instances", "--backgrounds",
               f"prepared:{on_s3}/backgrounds", "--steps", "2", "--arch", "resnet18", "--batch-size", "2",
               "--set", "synth.view_sizes=[64, 64, 32]", "--workers", "1", "--device", "cpu",
               "--out", str(tmp_path / "run"))
    assert proc.returncode == 0 and "trained 2 steps," in proc.stderr, proc.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["instances"] == f"prepared:{on_s3}/instances"
