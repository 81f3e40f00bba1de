"""Background-invariance probe: retrieval accuracy by hand, the views it builds, and the CLI."""

import json

import pytest
import torch

from codo_train.evaluate.probe import probe_views, retrieval_accuracy
from codo_train.models.codo import CoDoModel

from .helpers import cli


def test_retrieval_accuracy_on_hand_built_features():
    q = torch.eye(4)
    assert retrieval_accuracy(q, q, (1, 2)) == {"top1": 1.0, "top2": 1.0}
    k = q[[1, 0, 2, 3]]  # rows 0 and 1 swapped: their right key is second best
    k[0, 0] = k[1, 1] = 0.5
    assert retrieval_accuracy(q, k, (1, 2)) == {"top1": 0.5, "top2": 1.0}


def test_probe_views_put_each_instance_on_two_backgrounds():
    first, second = probe_views("sample", "sample", 6, seed=0)
    assert len(first) == len(second) == 6
    for a, b in zip(first, second):
        assert a.image.shape == b.image.shape == (224, 224, 3)
        assert len(a.ids) == len(b.ids) == 1
        assert not (a.image == b.image).all()
    small, _ = probe_views("sample", "sample", 6, seed=0, view_size=64)  # a run's own view size
    assert [v.image.shape for v in small] == [(64, 64, 3)] * 6
    assert [len(v.ids) for v in small] == [1] * 6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("probe") / "last.pt"
    torch.save({"step": 1, "config": {"arch": "resnet18"}, "model": CoDoModel("resnet18").state_dict()}, path)
    return path


def test_cli_reports_checkpoint_and_random_init(checkpoint):
    proc = cli("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
               "--num-instances", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["instances"] == 10
    for row in (data["checkpoint"], data["random_init"]):
        assert 0.0 <= row["top1"] <= row["top5"] <= 1.0
    text = cli("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
               "--num-instances", "5", check=True).stdout
    assert "checkpoint" in text and "random init" in text and "top-5" in text
    small = cli("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
                "--num-instances", "5", "--view-size", "64", "--json", check=True)
    assert json.loads(small.stdout)["instances"] == 5
    tiny = cli("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
               "--view-size", "8")
    assert tiny.returncode == 2 and "invalid view_size=8: must be in 16..4096" in tiny.stderr


def test_mismatched_architecture_and_too_many_instances_are_one_line_errors(checkpoint, tmp_path):
    wrong = tmp_path / "wrong.pt"
    torch.save({"step": 1, "config": {"arch": "resnet50"}, "model": CoDoModel("resnet18").state_dict()},
               wrong)
    proc = cli("codo-train", "probe", str(wrong), "--instances", "sample", "--backgrounds", "sample")
    assert proc.returncode == 2 and "does not fit a resnet50 CoDo model: " in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    many = cli("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
               "--num-instances", "500")
    assert many.returncode == 2 and "exceeds the 27 instances" in many.stderr


def test_probe_runs_on_the_named_device(checkpoint):
    """`--device cpu` is the default's figure; CUDA on a machine without it is a one-line input error."""
    args = ("codo-train", "probe", str(checkpoint), "--instances", "sample", "--backgrounds", "sample",
            "--num-instances", "6", "--json")
    default, named = (json.loads(cli(*args, *extra, check=True).stdout)
                      for extra in ((), ("--device", "cpu")))
    assert named == default
    if not torch.cuda.is_available():
        proc = cli(*args, "--device", "cuda")
        assert proc.returncode == 2 and "CUDA is not available" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
