"""The run folder: a folder that is not a codo run is refused (even with --overwrite, which removes codo's
own files only); a folder that cannot be written is an input error; a full disk keeps the last checkpoint."""

import errno
import io
import json
import logging
import os
from pathlib import Path

import pytest
import torch

import codo_aug.io.atomic
from codo_aug import InputError, RunError, SynthConfig, SynthJob, run_synth
from codo_cli.train import _summary
from codo_train import TrainConfig
from codo_train import train as train_in_process
from codo_train.checkpoint import prepare_run, save_atomic

from .helpers import cli


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("run-folder") / "shards"
    run_synth(SynthJob(out=out, num_samples=4, shard_size=4, seed=1, config=SynthConfig(view_sizes=(64, 64))))
    return str(out)


def train(shards: str, out: Path, *extra: str):
    return cli("codo-train", "run", "--shards", shards, "--steps", "1", "--arch", "resnet18",
               "--batch-size", "2", "--out", str(out), *extra)


def one_error_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_a_folder_that_is_not_a_codo_run_is_refused_even_with_overwrite(shards, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for extra in ((), ("--overwrite",)):
        proc = train(shards, tmp_path, *extra)
        assert proc.returncode == 2
        assert one_error_line(proc) == (f"codo-train: error: --out {tmp_path} is a non-empty folder that is "
                                        "not a codo run; choose a new or an empty one")
    assert os.listdir(tmp_path) == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_overwrite_removes_codo_files_only(shards, tmp_path):
    run = tmp_path / "run"
    assert train(shards, run).returncode == 0
    (run / "notes.txt").write_text("mine")
    (run / "checkpoints" / "best.pt").write_bytes(b"mine too")
    assert train(shards, run, "--seed", "1", "--overwrite").returncode == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "checkpoints" / "best.pt").read_bytes() == b"mine too"
    assert json.loads((run / "config.json").read_text())["seed"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["config"]["seed"] == 1


def test_a_finished_run_run_again_trains_nothing_warns_nothing_and_says_so(shards, tmp_path, caplog):
    """The LARS "cannot move the weights" warning is for steps still to train; a finished run has none."""
    cfg = TrainConfig(shards=shards, out=str(tmp_path / "run"), steps=1, arch="resnet18", batch_size=2)
    with caplog.at_level(logging.WARNING):
        first = train_in_process(cfg)
        assert "can move no weight" in caplog.text
        caplog.clear()
        again = train_in_process(cfg)
        assert "can move no weight" not in caplog.text
    assert _summary(first) == (f"trained 1 step, final loss {first.final_loss:.4f}; "
                               f"run in {tmp_path / 'run'}")
    assert _summary(again) == (f"nothing left to train: the run in {tmp_path / 'run'} has done its 1 step "
                               f"(final loss {first.final_loss:.4f})")


def test_out_under_a_file_is_an_input_error(shards, tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "run"
    proc = train(shards, out)
    assert proc.returncode == 2
    expected = f"codo-train: error: --out {out}: cannot write the run there (Not a directory: {out})"
    assert one_error_line(proc) == expected


def test_an_unwritable_out_is_an_input_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(InputError, match=r"--out .*/run: cannot write the run there \(Permission denied: "):
        prepare_run(tmp_path / "run", False, {}, {})


class _FullDisk(io.FileIO):
    """A file on a disk that fills up after the first kilobyte."""

    def write(self, data) -> int:
        if self.tell() + len(data) > 1024:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_atomic({"step": 1, "model": torch.zeros(4)}, path)
    monkeypatch.setattr(codo_aug.io.atomic, "open", _FullDisk, raising=False)
    with pytest.raises(RunError) as err:
        save_atomic({"step": 2, "model": torch.zeros(10_000)}, path)
    assert str(err.value) == (f"no space left on device while writing {path}; "
                              "the last good checkpoint (if any) is kept")
    assert torch.load(path, weights_only=False)["step"] == 1
    assert os.listdir(path.parent) == ["last.pt"]
