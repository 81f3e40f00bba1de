"""Shards in object storage and behind plain HTTP, against real servers on localhost (moto's S3 server,
http.server): synth writes the same bytes as to a folder, resumes after SIGKILL, shares a prefix between
nodes; verify, stats, ShardDataset, codo-train and the webdataset package read the objects."""

import io
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from codo_aug import ShardDataset
from codo_aug.errors import InputError
from codo_aug.shards.reader import BadRecord, expand_shards, read_shard
from codo_aug.io.storage import RetryingReader, expand_braces, split_location, with_retries

from .helpers import BIN, cli
from .servers import AWS_ENV, http_server, s3_server
from .test_shard_dataset import keys_seen

pytest.importorskip("s3fs")
pytest.importorskip("moto")

BUCKET = "codo-test"
JOB = ["--num-samples", "12", "--shard-size", "4", "--seed", "3", "--set", "view_sizes=[64, 64]"]
KEYS = [f"{i:09d}" for i in range(12)]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def names(prefix: str, bucket: str = BUCKET) -> list[str]:
    """Names of the objects under s3://bucket/prefix, fresh from the server."""
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    root = f"{bucket}/{prefix}"
    return sorted(p[len(root) + 1:] for p in fs.find(root))


def objects(prefix: str, bucket: str = BUCKET) -> dict[str, bytes]:
    """name below `prefix` -> bytes; only for prefixes no writer is changing (a listed object may vanish)."""
    import fsspec

    fs = fsspec.filesystem("s3")
    return {n: fs.cat_file(f"{bucket}/{prefix}/{n}") for n in names(prefix, bucket)}


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server with one empty bucket; the AWS environment points at it."""
    import fsspec

    with s3_server() as endpoint:
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
        yield endpoint


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    """The reference: JOB written to a local folder."""
    out = tmp_path_factory.mktemp("ref") / "shards"
    cli("codo-aug", "synth", "--out", str(out), *JOB, check=True)
    return out


@pytest.fixture(scope="module")
def on_s3(s3, local) -> str:
    """JOB written to s3://BUCKET/one by the CLI."""
    url = f"s3://{BUCKET}/one"
    done = cli("codo-aug", "synth", "--out", url, *JOB, check=True)
    assert f"wrote 12 samples in 3 shard(s) to {url}" in done.stderr
    return url


def test_braces_expand_as_webdataset_writes_them():
    assert expand_braces("s3://b/codo-{000008..000011}.tar") == [
        f"s3://b/codo-{i:06d}.tar" for i in (8, 9, 10, 11)]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]
    assert expand_braces("x{y}z") == ["x{y}z"] and expand_braces("plain.tar") == ["plain.tar"]
    assert split_location("s3://b/p/codo-000001.tar") == ("s3://b/p", "codo-000001.tar")
    assert split_location("file:///d/codo-000001.tar") == ("/d", "codo-000001.tar")


def test_synth_to_s3_writes_the_bytes_of_a_local_folder_and_verify_and_stats_read_them(on_s3, local):
    assert objects("one") == tree(local)  # shards, _index/, _job.json and _info.json, byte for byte
    ok = cli("codo-aug", "verify", on_s3)
    assert ok.returncode == 0 and "ok: 3 shard(s), 12 samples" in ok.stderr
    stats = cli("codo-aug", "stats", "--json", f"{on_s3}/codo-{{000000..000002}}.tar", check=True)
    assert json.loads(stats.stdout) == json.loads(cli("codo-aug", "stats", "--json", str(local)).stdout)
    assert expand_shards(f"file://{local}") == expand_shards(str(local))
    assert cli("codo-aug", "verify", f"file://{local}").returncode == 0
    assert expand_shards(on_s3) == expand_shards(f"{on_s3}/codo-*.tar") == [
        f"{on_s3}/codo-{i:06d}.tar" for i in range(3)]


def test_verify_names_a_changed_object(s3, local):
    import fsspec

    url = f"s3://{BUCKET}/changed"
    fs = fsspec.filesystem("s3")
    for name, data in tree(local).items():
        fs.pipe_file(f"{BUCKET}/changed/{name}", data)
    fs.pipe_file(f"{BUCKET}/changed/codo-000001.tar", tree(local)["codo-000001.tar"][:-512])
    bad = cli("codo-aug", "verify", url)
    assert bad.returncode == 1 and "codo-000001.tar: truncated" in bad.stderr
    assert "1 of 3 shard(s) failed verification" in bad.stderr


def test_a_listed_object_that_is_gone_is_refused_and_a_changed_one_is_a_bad_shard(s3, local, tmp_path):
    import fsspec

    url = f"s3://{BUCKET}/gone"
    fs = fsspec.filesystem("s3")
    for name, data in tree(local).items():
        if name != "codo-000001.tar":
            fs.pipe_file(f"{BUCKET}/gone/{name}", data)
    gone = f"{url}/codo-000001.tar"
    for read in (expand_shards, ShardDataset):
        with pytest.raises(InputError) as err:
            read(url)
        assert str(err.value).startswith(f"shard {gone} is listed in {url}/_info.json but missing: restore")
    proc = cli("codo-train", "run", "--shards", url, "--steps", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [f"codo-train: error: {err.value}"]
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match=f"{gone} is missing or not readable"):
        expand_shards(f"{url}/codo-{{000000..000002}}.tar")
    shard = tree(local)["codo-000002.tar"]  # 64 bytes inside its first member, a JPEG: the tar stays valid
    fs.pipe_file(f"{BUCKET}/gone/codo-000002.tar", shard[:1024] + bytes(64) + shard[1088:])
    records = list(ShardDataset(f"{url}/codo-*.tar", rank=0, world_size=1, shuffle=0).records())
    assert [r.key for r in records if not isinstance(r, BadRecord)] == KEYS[:4]
    changed = "the shard does not match _info.json: corrupted (sha256 differs from the index)"
    assert [(r.shard, r.key, r.reason) for r in records if isinstance(r, BadRecord)] == [
        (f"{url}/codo-000002.tar", key, changed) for key in KEYS[8:]]


@pytest.mark.slow
def test_synth_to_s3_killed_with_sigkill_resumes_to_the_same_bytes(s3, tmp_path):
    args = ["--num-samples", "160", "--shard-size", "10", "--seed", "5", "--set", "view_sizes=[96, 64]"]
    cli("codo-aug", "synth", "--out", str(tmp_path / "ref"), *args, check=True)
    url = f"s3://{BUCKET}/killed"
    proc = subprocess.Popen([str(BIN / "codo-aug"), "synth", "--out", url, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not any(n.endswith(".tar") for n in names("killed")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0.0, 0.3))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = objects("killed")
    assert "_info.json" not in partial, "killed too late to test a resume"
    ref = tree(tmp_path / "ref")
    assert all(partial[n] == ref[n] for n in partial if n.endswith(".tar")), "only whole shards exist"
    cli("codo-aug", "synth", "--out", url, *args, check=True)
    assert objects("killed") == ref


@pytest.mark.slow
def test_two_nodes_write_one_prefix(s3, local):
    url = f"s3://{BUCKET}/nodes"
    procs = [subprocess.Popen([str(BIN / "codo-aug"), "synth", "--out", url, *JOB, "--num-nodes", "2",
                               "--node-rank", str(r)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for r in (0, 1)]
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read()
    assert objects("nodes") == tree(local)  # whichever node lists the index last writes _info.json


def test_shard_dataset_over_s3_two_ranks_by_two_workers_reads_each_sample_once(on_s3):
    for pattern in (on_s3, f"{on_s3}/codo-{{000000..000002}}.tar"):
        per_rank = keys_seen(pattern, epoch=1, shuffle=4)
        assert [len(keys) for keys in per_rank] == [6, 6]
        assert sorted(k for keys in per_rank for k in keys) == KEYS


def test_the_webdataset_package_reads_the_objects_through_its_own_url_handling(s3, on_s3, local):
    wds = pytest.importorskip("webdataset")
    # WebDataset's pipe: URL around a signed S3 GET (curl --aws-sigv4: `aws s3 cp URL -` where awscli is)
    user = f"{AWS_ENV['AWS_ACCESS_KEY_ID']}:{AWS_ENV['AWS_SECRET_ACCESS_KEY']}"
    url = (f"pipe:curl -s -f --aws-sigv4 aws:amz:{AWS_ENV['AWS_DEFAULT_REGION']}:s3 --user {user} "
           f"{s3}/{BUCKET}/one/codo-{{000000..000002}}.tar")
    samples = list(wds.WebDataset(url, shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == KEYS
    first = next(iter(ShardDataset(str(local), world_size=1, shuffle=0)))
    assert json.loads(samples[0]["json"]) == first.meta


@pytest.mark.slow
def test_codo_train_runs_three_steps_on_s3_shards(on_s3, tmp_path):
    run = cli("codo-train", "run", "--shards", on_s3, "--steps", "3", "--arch", "resnet18", "--device", "cpu",
              "--batch-size", "4", "--workers", "1", "--out", str(tmp_path / "run"), check=True)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and (tmp_path / "run" / "checkpoints" / "last.pt").exists(), run.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["shard_files"] == [f"{on_s3}/codo-{i:06d}.tar" for i in range(3)]


def test_missing_buckets_and_unreachable_endpoints_are_one_line_errors(s3, tmp_path):
    commands = [("codo-aug", "verify", "s3://no-such-bucket/x"),
                ("codo-aug", "stats", "s3://no-such-bucket/x/codo-{000000..000001}.tar"),
                ("codo-aug", "synth", "--out", "s3://no-such-bucket/x", "--num-samples", "2"),
                ("codo-train", "run", "--shards", "s3://no-such-bucket/x/", "--steps", "1",
                 "--out", str(tmp_path / "run"))]
    for args in commands:
        proc = cli(*args)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert "no-such-bucket" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
    down = cli("codo-aug", "stats", f"s3://{BUCKET}/one/", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert down.returncode == 2 and "Could not connect" in down.stderr and "Traceback" not in down.stderr


def test_http_shards_read_through_an_info_prefix_and_survive_broken_connections(local, caplog):
    with http_server(local.parent, flaky=True) as base:
        urls = expand_shards(f"{base}/{local.name}/")  # _info.json names them
        assert urls == [f"{base}/{local.name}/codo-{i:06d}.tar" for i in range(3)]
        got = [(key, members) for url in urls for _, key, members in read_shard(url)]
    want = [(key, members) for path in expand_shards(str(local)) for _, key, members in read_shard(path)]
    assert got == want  # every first response broke halfway; each was retried where it stopped
    # _info.json, the folder's listing (which shards are there: http.server lists them) and 3 shards
    assert sum("retrying" in r.message for r in caplog.records) == 5


def test_http_refusal_and_absence_are_input_errors(local):
    with http_server(local.parent) as base:
        for url in (f"{base}/denied/codo-{{000000..000002}}.tar", f"{base}/nothing-here/"):
            with pytest.raises(InputError, match="no such shard|no shards match"):
                expand_shards(url)
        denied = cli("codo-aug", "stats", f"{base}/denied/{local.name}/")
        assert denied.returncode == 2 and len(denied.stderr.strip().splitlines()) == 1, denied.stderr


class Flaky:
    """An opener of `data` whose streams break (ConnectionResetError) past byte 1000, `fails` times in all."""

    def __init__(self, data: bytes, fails: int):
        self.data, self.fails = data, fails

    def __call__(self) -> "Flaky":
        self.stream = io.BytesIO(self.data)
        return self

    def read(self, n: int) -> bytes:
        if self.fails and self.stream.tell() >= 1000:
            self.fails -= 1
            raise ConnectionResetError("reset by peer")
        return self.stream.read(min(n, 300))

    def seek(self, pos: int) -> None:
        self.stream.seek(pos)

    def close(self) -> None:
        pass


def test_reads_retry_transient_errors_then_give_up_and_never_retry_missing_objects():
    data = bytes(range(256)) * 40
    assert io.BufferedReader(RetryingReader(Flaky(data, 4), "x", backoff_s=0)).read() == data
    with pytest.raises(OSError, match="gave up after 4 retries"):
        io.BufferedReader(RetryingReader(Flaky(data, 5), "x", backoff_s=0)).read()
    calls = []

    def missing():
        calls.append(1)
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        with_retries(missing, "x", backoff_s=0)
    assert len(calls) == 1


def test_without_fsspec_a_url_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_fsspec(name, *args, **kw):
        if name.startswith("fsspec"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    with pytest.raises(InputError, match=r"pip install 'codo\[s3\]'"):
        expand_shards("s3://bucket/prefix/")
