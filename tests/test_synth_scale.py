"""Synth at scale: the same bytes for any number of workers or machines, and after a SIGKILL."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from codo_aug import SynthConfig, SynthJob, run_synth
from codo_aug.shards.reader import expand_shards, iter_members

from .helpers import BIN, cli

CFG = SynthConfig(view_sizes=(64, 48))  # small views: these tests are about bookkeeping, not pixels


def job(out: Path, **kw) -> SynthJob:
    return SynthJob(out=out, **{"num_samples": 24, "shard_size": 4, "seed": 7, "config": CFG, **kw})


def tree(out: Path) -> dict[str, bytes]:
    """Every shard and _info.json of a folder, by name."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())
            if p.suffix == ".tar" or p.name == "_info.json"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "one"
    run_synth(job(out))
    return out


@pytest.mark.parametrize("workers", [2, 4])
def test_any_number_of_workers_gives_the_same_bytes(reference, tmp_path, workers):
    report = run_synth(job(tmp_path / "w", workers=workers))
    assert report.samples == 24 and len(report.shards) == 6
    assert tree(tmp_path / "w") == tree(reference)


def test_nodes_split_the_shards_and_their_union_is_the_single_node_run(reference, tmp_path):
    out = tmp_path / "nodes"
    written = []
    for rank in (2, 0, 1):
        report = run_synth(job(out, num_nodes=3, node_rank=rank))
        written.append({s.name for s in report.shards})
        assert (report.info is None) == (rank != 1), "only the node that completes the set writes _info.json"
    assert written == [{"codo-000002.tar", "codo-000005.tar"}, {"codo-000000.tar", "codo-000003.tar"},
                       {"codo-000001.tar", "codo-000004.tar"}]
    assert tree(out) == tree(reference)


def test_same_command_again_finishes_nothing_new_and_changes_nothing(reference, tmp_path):
    out = tmp_path / "again"
    run_synth(job(out))
    before = tree(out)
    report = run_synth(job(out))
    assert report.resumed == 6 and tree(out) == before


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_run_killed_at_a_random_moment_resumes_to_the_same_bytes(tmp_path, seed):
    args = ["synth", "--out", str(tmp_path / "killed"), "--num-samples", "400", "--shard-size", "10",
            "--workers", "2", "--set", "view_sizes=[160, 96]"]
    ref = tmp_path / "ref"
    cli("codo-aug", *args[:2], str(ref), *args[3:], check=True)
    proc = subprocess.Popen([str(BIN / "codo-aug"), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not list((tmp_path / "killed").glob("codo-*.tar")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 0.5))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "_info.json").exists(), "killed too late to test a resume"
    cli("codo-aug", *args, check=True)
    out = tmp_path / "killed"
    assert tree(out) == tree(ref)
    assert not list(out.rglob("*.tmp"))
    keys = [key for path in expand_shards(str(out)) for key, _ in iter_members(path)]
    assert keys == [f"{i:09d}" for i in range(400)]
    assert cli("codo-aug", "verify", str(out)).returncode == 0


def test_verify_names_each_missing_truncated_or_corrupted_shard(reference, tmp_path):
    out = tmp_path / "v"
    run_synth(job(out))
    ok = cli("codo-aug", "verify", str(out))
    assert ok.returncode == 0 and "ok: 6 shard(s), 24 samples" in ok.stderr
    (out / "codo-000001.tar").unlink()
    data = (out / "codo-000002.tar").read_bytes()
    (out / "codo-000002.tar").write_bytes(data[: len(data) // 2])
    flipped = bytearray((out / "codo-000004.tar").read_bytes())
    flipped[700] ^= 0xFF
    (out / "codo-000004.tar").write_bytes(bytes(flipped))
    bad = cli("codo-aug", "verify", str(out))
    assert bad.returncode == 1
    assert "codo-000001.tar: missing" in bad.stderr
    assert "codo-000002.tar: truncated" in bad.stderr
    assert "codo-000004.tar: corrupted" in bad.stderr
    assert "3 of 6 shard(s) failed verification" in bad.stderr
    assert cli("codo-aug", "verify", str(tmp_path)).returncode == 2


def test_stats_counts_and_histograms(reference):
    text = cli("codo-aug", "stats", str(reference), check=True).stdout
    assert "shards: 6   samples: 24   views: 48" in text
    assert "instances per view" in text and "instance size" in text and "source classes" in text
    data = json.loads(cli("codo-aug", "stats", str(reference), "--json", check=True).stdout)
    assert data["samples"] == 24 and sum(data["instances_per_view"].values()) == 48
    assert (sum(data["instance_size"].values())
            == sum(int(k) * v for k, v in data["instances_per_view"].items()))
    assert set(data["source_classes"]) <= {"bottle", "burts_bees_baby_wipes", "chair", "diningtable",
                                           "fiskars_scissors", "hanes_socks", "ice_cube_tray",
                                           "irish_spring_soap", "laugh_out_loud_jokes", "measuring_spoons",
                                           "mouse_traps", "person"}


def test_dry_run_prints_a_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "dry"
    proc = cli("codo-aug", "synth", "--out", str(out), "--num-samples", "5000", "--shard-size", "1000",
               "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert ("plan: 5000 samples in 5 shard(s) on this node, about" in proc.stderr
            and "nothing written" in proc.stderr)
    assert not out.exists()
    bad = cli("codo-aug", "synth", "--out", str(out), "--dry-run", "--backgrounds", "folder:/nope")
    assert bad.returncode == 2 and not out.exists()


def test_invalid_node_options(tmp_path):
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--num-nodes", "2", "--node-rank", "2")
    assert proc.returncode == 2 and "invalid node_rank=2: must be in 0..1" in proc.stderr
