"""torchrun: two CPU processes (gloo) keep identical parameters and read disjoint samples."""

import json
import os
import subprocess

import pytest
import torch

from codo_train import distributed

from .helpers import BIN


@pytest.mark.slow
@pytest.mark.parametrize("source", ["shards", "online"])
def test_two_ranks_share_weights_and_split_the_data(train_shards, tmp_path, source):
    run = tmp_path / "ddp"
    data = (["--shards", str(train_shards)] if source == "shards"
            else ["--instances", "sample", "--backgrounds", "sample"])
    proc = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", str(BIN / "codo-train"), "run",
         *data, "--out", str(run), "--steps", "3", "--arch", "resnet18", "--batch-size", "2",
         "--device", "cpu"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((run / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["params_sha256"] == ranks[1]["params_sha256"]
    assert len(ranks[0]["samples"]) == len(ranks[1]["samples"]) == 6
    assert not set(ranks[0]["samples"]) & set(ranks[1]["samples"])
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # rank 0 alone writes metrics
    assert proc.stderr.count("trained 3 steps") == 1


def test_an_indexed_cuda_device_becomes_the_current_one(monkeypatch):
    """--device cuda:1 in one process: what is not placed explicitly must not land on GPU 0."""
    current = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    assert distributed.require_device("cuda:1") == torch.device("cuda", 1)
    assert current == [torch.device("cuda", 1)]
    distributed.require_device("cuda")  # no index: the current device stays as it is
    distributed.require_device("cpu")
    assert current == [torch.device("cuda", 1)]
