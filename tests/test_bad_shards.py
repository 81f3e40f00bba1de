"""Bad shard records (an undecodable image, garbled JSON, a missing view, a foreign tar, a file that is
not a tar) are skipped, named and counted; too many stop a run; resume stays exact."""

import io
import json
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest

from codo_aug import InputError, RunError, ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.shards.format import decode_record, encode_image
from codo_aug.shards.reader import BadRecord
from codo_train import TrainConfig
from codo_train.data import DataPosition, endless_batches
from codo_train.trainer import train

from .helpers import cli

#: (shard, key) of each bad record in `bad_shards` ('' for a whole shard), and what its reason says.
BAD = {
    ("codo-000000.tar", "000000001"): "the view0 image member does not decode",
    ("codo-000001.tar", "000000005"): "the .json member does not parse",
    ("codo-000002.tar", "000000009"): "no view1 image member",
    ("foreign.tar", ""): "not a codo shard",
    ("notatar.tar", ""): "unreadable (ReadError",
}
GOOD = [f"{i:09d}" for i in range(16) if i not in (1, 5, 9)]


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def spoil(path: Path, changes: dict[str, bytes | None]) -> None:
    """Rewrite a tar with members replaced (bytes) or left out (None)."""
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    write_tar(path, [(n, changes.get(n, d)) for n, d in members if changes.get(n, d) is not None])


@pytest.fixture(scope="module")
def bad_shards(tmp_path_factory) -> Path:
    """16 samples in 4 codo shards, 3 of them spoiled, beside a foreign tar and a file that is not a tar; a
    folder without `_info.json`, so every *.tar is read and each record judged by itself (shards checked by
    their sha256: test_shard_checks)."""
    out = tmp_path_factory.mktemp("bad") / "shards"
    run_synth(SynthJob(out=out, num_samples=16, shard_size=4, seed=5,
                       config=SynthConfig(view_sizes=(64, 64), photometric="none")))
    (out / "_info.json").unlink()
    spoil(out / "codo-000000.tar", {"000000001.view0.jpg": b"not a jpeg"})
    spoil(out / "codo-000001.tar", {"000000005.json": b'{"views": [garbled'})
    spoil(out / "codo-000002.tar", {"000000009.view1.jpg": None})
    write_tar(out / "foreign.tar", [("readme.txt", b"hello"), ("cat.png", b"\x89PNG")])
    (out / "notatar.tar").write_bytes(b"this is not a tar file\n" * 40)
    return out


def named(bad: list[BadRecord]) -> dict[tuple[str, str], str]:
    return {(Path(b.shard).name, b.key): b.reason for b in bad}


def test_records_name_every_bad_record_and_iteration_skips_them(bad_shards, caplog):
    ds = ShardDataset(str(bad_shards), rank=0, world_size=1, shuffle=0)
    items = list(ds.records())
    reasons = named([b for b in items if isinstance(b, BadRecord)])
    assert reasons.keys() == BAD.keys() and all(BAD[k] in reasons[k] for k in BAD)
    assert [r.key for r in items if not isinstance(r, BadRecord)] == GOOD
    with caplog.at_level(logging.WARNING, "codo_aug.shards"):
        assert [r.key for r in ds] == GOOD
    assert len(caplog.records) == 5
    spoiled = bad_shards / "codo-000001.tar"
    assert f"shard {spoiled}, key 000000005: the .json member does not parse" in caplog.text


JPEG = encode_image(np.zeros((8, 8, 3), np.uint8), "jpg", 90)


@pytest.mark.parametrize("members, reason", [
    ({"view0.jpg": JPEG}, "no .json member (has view0.jpg): not a codo record"),
    ({"json": b"[1, 2]"}, "the .json member has no 'views' list: not a codo record"),
    ({"json": b'{"views": [{"boxes": []}]}', "view0.jpg": JPEG},
     "the .json member is not a codo record (KeyError: 'rois')"),
    ({"json": b'{"views": [{"boxes": [[0, 0, 2, 2]], "rois": [], "ids": [0]}]}', "view0.jpg": JPEG},
     "view0 lists 1 boxes, 0 rois, 1 ids, 1 masks"),
    ({"json": b'{"views": [{"boxes": [], "rois": [], "ids": [], "masks": []}]}', "view0.jpg": b""},
     "the view0 image member does not decode"),
    ({"json": b'{"views": [{"boxes": [[0, 0, NaN, 2]], "rois": [[0, 0, 2, 2]], "ids": [0]}]}',
      "view0.jpg": JPEG}, "view0 has boxes that are not finite numbers"),
    ({"json": b'{"views": [{"boxes": [[0, 0, 2, 2]], "rois": [[0, 0, Infinity, 2]], "ids": [0]}]}',
      "view0.jpg": JPEG}, "view0 has rois that are not finite numbers"),
])
def test_decode_record_says_what_is_wrong(members, reason):
    with pytest.raises(ValueError) as err:
        decode_record("000000007", members)
    assert str(err.value) == reason


def batches(shards: Path, position: DataPosition, n: int, workers: int, **kw) -> list[tuple[str, ...]]:
    """The keys of the next `n` training batches (of 2) from `position` on."""
    stream = endless_batches(ShardDataset(str(shards), rank=0, world_size=1, shuffle=8, seed=1), 2, workers,
                             position, **kw)
    return [tuple(next(stream).keys) for _ in range(n)]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact_with_bad_records(bad_shards, workers):
    whole = batches(bad_shards, DataPosition(), 14, workers)  # two epochs and more
    assert {k for b in whole for k in b} <= set(GOOD), "a bad record never reaches a batch"
    for k in (1, 3, 6, 7):
        position = DataPosition()
        head = batches(bad_shards, position, k, workers)
        saved = DataPosition.from_dict(position.to_dict(), 2)  # what a checkpoint holds
        assert head + batches(bad_shards, saved, 14 - k, workers) == whole, f"resumed after {k} batches"


def test_bad_records_are_counted_per_epoch_with_the_first_bad_shard(bad_shards):
    position = DataPosition()
    stream = endless_batches(ShardDataset(str(bad_shards), rank=0, world_size=1, shuffle=0), 2, 0, position)
    for _ in range(6):  # epoch 0: 13 good records, 6 batches
        next(stream)
    assert (position.epoch, position.records, position.bad) == (0, 15, 3)  # keys 0-14
    next(stream)  # the epoch's end (key 15, the foreign tar, the non-tar), then keys 0-2 of epoch 1
    assert (position.epoch, position.read, position.records, position.bad) == (1, [3], 21, 6)
    assert position.first_bad == str(bad_shards / "codo-000000.tar")


def test_too_many_bad_records_stop_with_one_line_naming_the_first_bad_shard(bad_shards):
    with pytest.raises(RunError) as err:
        batches(bad_shards, DataPosition(), 60, 0)
    first = min(p for p in bad_shards.glob("*.tar") if p.name.startswith("codo-000000"))
    message = str(err.value)
    assert "\n" not in message
    assert message.endswith(f"more than 1.0%; the first is in {first} (see the warnings)")
    bad, read = (int(w) for w in message.split()[:3:2])
    assert read >= 100 and bad / read == pytest.approx(5 / 18, abs=0.03)
    assert len(batches(bad_shards, DataPosition(), 60, 0, max_bad_fraction=0.3)) == 60


def test_a_run_with_almost_only_bad_records_exits_1_in_one_line(tmp_path):
    out = tmp_path / "shards"
    run_synth(SynthJob(out=out, num_samples=4, shard_size=4, seed=1, config=SynthConfig(view_sizes=(64, 64))))
    write_tar(out / "garbled.tar", [(f"{i:09d}.json", b"\x00garbled") for i in range(120)])
    shards = str(out / "*.tar")  # a glob: the folder stands for the shards its _info.json lists
    proc = cli("codo-train", "run", "--shards", shards, "--steps", "3", "--batch-size", "8",
               "--arch", "resnet18", "--out", str(tmp_path / "run"))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == [f"codo-train: error: 120 of 124 shard records read are bad, more than 1.0%; "
                      f"the first is in {out / 'garbled.tar'} (see the warnings)"]
    named = [line for line in proc.stderr.splitlines() if f"shard {out / 'garbled.tar'}, key " in line]
    assert len(named) == 1 and "the .json member does not parse" in named[0]  # once for 120 alike
    assert not (tmp_path / "run").exists()  # it failed before a checkpoint or a logged step: nothing kept
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept")  # not a run: refused, and never removed
    with pytest.raises(InputError, match="is a non-empty folder that is not a codo run"):
        train(TrainConfig(shards=shards, out=str(mine), steps=3, batch_size=8, arch="resnet18"))
    (mine / "notes.txt").unlink()  # a folder that was there before the run: it stays, with the run's files
    with pytest.raises(RunError, match="120 of 124 shard records read are bad"):
        train(TrainConfig(shards=shards, out=str(mine), steps=3, batch_size=8, arch="resnet18"))
    assert (mine / "config.json").is_file()


@pytest.mark.slow
def test_training_skips_names_and_counts_bad_records(bad_shards, tmp_path):
    run = tmp_path / "run"
    proc = cli("codo-train", "run", "--shards", str(bad_shards), "--steps", "4", "--batch-size", "4",
               "--arch", "resnet18", "--seed", "2", "--out", str(run), check=True)
    for (shard, key), reason in BAD.items():
        assert f"shard {bad_shards / shard}, key {key or '(none: the shard itself)'}: {reason}" in proc.stderr
    counts = [json.loads(line)["bad_samples"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    position = DataPosition()  # the trainer's data stream, replayed
    stream = endless_batches(ShardDataset(str(bad_shards), rank=0, world_size=1, seed=2), 4, 0, position)
    expected = []
    for _ in range(4):  # 3 batches of 13 good records in epoch 0, the 4th from epoch 1
        next(stream)
        expected.append(position.bad)
    assert counts == expected and counts[-1] >= 5


class _Stop(Exception):
    """Stands for a crash after a checkpoint."""


def _stop_at(step: int):
    def on_step(metrics: dict) -> None:
        if metrics.get("step") == step:
            raise _Stop

    return on_step


@pytest.mark.slow
def test_an_interrupted_run_over_bad_records_resumes_exactly(bad_shards, tmp_path):
    settings = dict(shards=str(bad_shards), steps=5, arch="resnet18", batch_size=2, save_every=3, workers=2,
                    seed=3)
    train(TrainConfig(out=str(tmp_path / "ref"), **settings))
    with pytest.raises(_Stop):  # after the checkpoint of step 3, an odd number of batches from two workers
        train(TrainConfig(out=str(tmp_path / "run"), **settings), on_step=_stop_at(4))
    assert train(TrainConfig(out=str(tmp_path / "run"), **settings)).resumed_from == 3

    def rows(run: str) -> list[tuple]:
        lines = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [(m["step"], m["loss"], m["pairs"], m["bad_samples"]) for m in lines]

    assert rows("run") == rows("ref") and rows("ref")[-1][3] >= 1
