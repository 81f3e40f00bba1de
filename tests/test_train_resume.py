"""A run killed with SIGKILL after a checkpoint and started again ends exactly as an uninterrupted run."""

import json
import os
import signal
import subprocess
import time

import pytest

from codo_aug import ShardDataset
from codo_train.data import DataPosition

from .helpers import BIN, cli


def losses(run) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_skips_exactly_the_records_already_read(train_shards):
    full = [r.key for r in ShardDataset(str(train_shards), rank=0, world_size=1, shuffle=8, seed=1)]
    ds = ShardDataset(str(train_shards), rank=0, world_size=1, shuffle=8, seed=1)
    ds.resume(0, [20])
    assert [r.key for r in ds] == full[20:]
    ds.set_epoch(1)
    assert len(list(ds)) == 48, "the skip applies to the resumed epoch only"


def test_a_checkpoint_that_counted_batches_resumes_at_the_same_records():
    older = {"epoch": 2, "consumed": [3, 1]}  # batches per worker, before bad records were counted
    assert DataPosition.from_dict(older, 4) == DataPosition(epoch=2, read=[12, 4])


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "2"])
def test_killed_run_resumes_to_the_same_losses(train_shards, tmp_path, workers):
    args = ["run", "--shards", str(train_shards), "--steps", "6", "--arch", "resnet18", "--batch-size", "4",
            "--save-every", "2", "--workers", workers, "--seed", "3"]
    cli("codo-train", *args, "--out", str(tmp_path / "ref"), check=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen([str(BIN / "codo-train"), *args, "--out", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = run / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(losses(run)) < 6, "killed too late to test a resume"
    again = cli("codo-train", *args, "--out", str(run), check=True)
    assert "resumed at step" in again.stderr
    assert losses(run) == losses(tmp_path / "ref")
    assert not list(run.rglob("*.tmp"))
    different = cli("codo-train", *args[:-2], "--seed", "4", "--out", str(run))
    assert different.returncode == 2 and "holds a different run (differs in: seed)" in different.stderr
