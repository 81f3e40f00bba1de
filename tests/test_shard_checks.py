"""Complete, checked reads: a folder with `_info.json` stands for every shard it lists (one that is gone
stops the read before it starts), braces name shards that must exist, a glob reads those there are, and
each listed shard is held to its size and sha256 as it is read, so damaged bytes that still decode make
a counted, named bad shard. Object storage: test_object_storage."""

import json
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import InputError, RunError, ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.shards.format import Record
from codo_aug.shards.reader import BadRecord, expand_shards, read_piece
from codo_aug.sources.decode import decode
from codo_train.data import DataPosition, endless_batches

from .helpers import cli
from .test_bad_images import photo

KEYS = [f"{i:09d}" for i in range(12)]
#: 64 bytes of noise with no 0xFF (which would start a JPEG marker): libjpeg warns where it meets them
NOISE = bytes(np.random.default_rng(0).integers(0, 255, 64, dtype=np.uint8))
CHANGED = "the shard does not match _info.json: corrupted (sha256 differs from the index)"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """12 samples in 3 shards of 4, as synth wrote them (with `_info.json`)."""
    out = tmp_path_factory.mktemp("checks") / "shards"
    run_synth(SynthJob(out=out, num_samples=12, shard_size=4, seed=7,
                       config=SynthConfig(view_sizes=(64, 48), photometric="none")))
    return out


@pytest.fixture
def shards(pristine, tmp_path) -> Path:
    """A copy of `pristine` to spoil."""
    return Path(shutil.copytree(pristine, tmp_path / "shards"))


def damage_jpeg(data: bytes) -> bytes:
    """`data` (a JPEG) with 64 bytes halfway through its entropy-coded scan overwritten by NOISE: it still
    decodes, with a libjpeg warning ("Corrupt JPEG data")."""
    at = (data.index(b"\xff\xda") + len(data)) // 2
    return data[:at] + NOISE + data[at + 64:]


def damage_member(shard: Path, member: str) -> None:
    """Damage JPEG `member` of `shard` in place: same length, so the tar stays valid."""
    with tarfile.open(shard) as tar:
        info = tar.getmember(member)
        data = tar.extractfile(info).read()
    raw = bytearray(shard.read_bytes())
    raw[info.offset_data:info.offset_data + len(data)] = damage_jpeg(data)
    shard.write_bytes(bytes(raw))


def items(pattern: str | Path, **kw) -> list[Record | BadRecord]:
    return list(ShardDataset(str(pattern), rank=0, world_size=1, shuffle=0, **kw).records())


def keys(records: list) -> list[str]:
    return [r.key for r in records if not isinstance(r, BadRecord)]


def bad(records: list) -> list[tuple[str, str, str]]:
    return [(Path(b.shard).name, b.key, b.reason) for b in records if isinstance(b, BadRecord)]


def test_a_listed_shard_that_is_gone_stops_the_read_before_it_starts(shards):
    (shards / "codo-000001.tar").unlink()
    want = (f"shard {shards / 'codo-000001.tar'} is listed in {shards / '_info.json'} but missing: restore "
            f"it (`codo-aug verify {shards}` names every missing or changed shard), or give the shards to "
            f"read by a glob ('{shards / '*.tar'}')")
    for read in (expand_shards, ShardDataset):
        with pytest.raises(InputError) as err:
            read(str(shards))
        assert str(err.value) == want
    assert keys(items(shards / "*.tar")) == KEYS[:4] + KEYS[8:]  # a glob reads the shards there are, checked


def test_the_cli_refuses_a_missing_listed_shard_in_one_line_before_writing_the_run(shards, tmp_path):
    (shards / "codo-000002.tar").unlink()
    proc = cli("codo-train", "run", "--shards", str(shards), "--steps", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"codo-train: error: shard {shards / 'codo-000002.tar'} is listed in {shards / '_info.json'} but "
        f"missing: restore it (`codo-aug verify {shards}` names every missing or changed shard), or give "
        f"the shards to read by a glob ('{shards / '*.tar'}')"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("indexed", [True, False])
def test_braces_name_shards_that_must_exist_and_a_glob_reads_those_there_are(shards, indexed):
    if not indexed:
        (shards / "_info.json").unlink()
    for gone in ("codo-000001.tar", "codo-000002.tar"):
        (shards / gone).unlink()
    braces = str(shards / "codo-{000000..000002}.tar")
    with pytest.raises(InputError) as err:
        expand_shards(braces)
    assert str(err.value) == (f"no shards match {braces!r}: {shards / 'codo-000001.tar'} is missing or not "
                              "readable (braces name shards that must all exist; a glob reads those there)")
    with pytest.raises(InputError, match="codo-000002.tar is missing"):
        expand_shards(str(shards / "codo-000002.tar"))
    assert expand_shards(str(shards / "codo-00000[0-2].tar")) == [str(shards / "codo-000000.tar")]
    assert expand_shards(str(shards / "codo-{000000,000000}.tar")) == [str(shards / "codo-000000.tar")] * 2


def test_a_folder_reads_the_shards_its_info_lists_and_names_those_it_does_not(shards, caplog):
    shutil.copy(shards / "codo-000000.tar", shards / "extra.tar")
    with caplog.at_level(logging.WARNING, "codo_aug.shards"):
        assert expand_shards(str(shards)) == [str(shards / f"codo-{i:06d}.tar") for i in range(3)]
    assert [r.message for r in caplog.records] == [
        f"1 *.tar in {shards} not listed in its _info.json are not read (extra.tar); a glob reads them"]
    unlisted = items(shards / "*.tar")  # read by a glob, and not checked: _info.json has no entry for it
    assert keys(unlisted) == KEYS + KEYS[:4] and not bad(unlisted)


def test_damaged_jpeg_bytes_still_decode_and_the_checksum_makes_the_shard_bad(pristine, shards, capfd,
                                                                              caplog):
    damage_member(shards / "codo-000001.tar", "000000005.view0.jpg")
    unchecked = items(shards, verify_shards=False)
    assert keys(unchecked) == KEYS and not bad(unchecked)  # the damage decodes: nothing else catches it
    assert "Corrupt JPEG data" in capfd.readouterr().err  # libjpeg's warning, not an error
    before = next(r for r in items(pristine) if r.key == KEYS[5]).views[0].image
    assert np.abs(unchecked[5].views[0].image.astype(int) - before).mean() > 5  # visibly other pixels
    checked = items(shards)
    assert keys(checked) == KEYS[:4] + KEYS[8:]
    assert bad(checked) == [("codo-000001.tar", key, CHANGED) for key in KEYS[4:8]]
    with caplog.at_level(logging.WARNING, "codo_aug.shards"):
        assert [r.key for r in ShardDataset(str(shards), rank=0, world_size=1, shuffle=0)] == keys(checked)
    assert [r.message for r in caplog.records] == [  # one warning for the shard, not one per record
        f"skipped a bad sample: shard {shards / 'codo-000001.tar'}, key {KEYS[4]}: {CHANGED}"]


def test_a_shard_cut_short_is_bad_even_where_its_records_still_read(shards):
    shard = shards / "codo-000002.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[:-1024])  # the tar's closing blocks: every record still reads
    assert len(list(read_piece(str(shard), 0, None))) == 4
    reason = f"the shard does not match _info.json: truncated ({len(data) - 1024} of {len(data)} bytes)"
    assert bad(items(shards)) == [("codo-000002.tar", key, reason) for key in KEYS[8:]]


def test_a_changed_shard_counts_its_records_under_max_bad_fraction(shards):
    damage_member(shards / "codo-000000.tar", "000000002.view1.jpg")
    position = DataPosition()
    stream = endless_batches(ShardDataset(str(shards), rank=0, world_size=1, shuffle=0), 2, 0, position)
    for _ in range(4):  # the 8 good records of epoch 0
        assert next(stream).keys[0] in KEYS[4:]
    assert (position.records, position.bad, position.first_bad) == (12, 4, str(shards / "codo-000000.tar"))
    with pytest.raises(RunError) as err:  # a third of what is read is bad: the run stops past 100 records,
        for _ in range(60):                # 8 epochs and the first delivery of the 9th (4 bad, 2 good)
            next(stream)
    assert str(err.value) == (f"36 of 102 shard records read are bad, more than 1.0%; the first is in "
                              f"{shards / 'codo-000000.tar'} (see the warnings)")
    tolerant = endless_batches(ShardDataset(str(shards), rank=0, world_size=1, shuffle=0), 2, 0,
                               DataPosition(), max_bad_fraction=0.4)
    assert len([next(tolerant) for _ in range(60)]) == 60


@pytest.mark.parametrize("damaged", [False, True])
def test_each_rank_checks_the_whole_shard_it_reads_a_piece_of(shards, damaged):
    """12 records over 2 ranks: rank 0 reads shard 0 and records 4-5 of shard 1, rank 1 the rest; each
    hashes all of shard 1 (the bytes after its piece too), so a sound shard passes and a changed one
    fails on both, and each rank still reads 6 records."""
    if damaged:
        damage_member(shards / "codo-000001.tar", "000000007.view0.jpg")
    got = [list(ShardDataset(str(shards), rank=r, world_size=2, shuffle=0).records()) for r in (0, 1)]
    assert [len(g) for g in got] == [6, 6]
    if not damaged:
        assert [keys(g) for g in got] == [KEYS[:6], KEYS[6:]]
        return
    assert [keys(g) for g in got] == [KEYS[:4], KEYS[8:]]
    assert [bad(g) for g in got] == [[("codo-000001.tar", k, CHANGED) for k in KEYS[4:6]],
                                     [("codo-000001.tar", k, CHANGED) for k in KEYS[6:8]]]


def test_a_source_photo_that_decodes_with_a_libjpeg_warning_stays_usable(tmp_path, capfd):
    folder = tmp_path / "backgrounds"
    folder.mkdir()
    Image.fromarray(photo(160, 120, seed=3)).save(folder / "photo.jpg", quality=90)
    (folder / "photo.jpg").write_bytes(damage_jpeg((folder / "photo.jpg").read_bytes()))
    assert decode(str(folder / "photo.jpg")).shape == (120, 160, 3)
    assert "Corrupt JPEG data" in capfd.readouterr().err
    report = run_synth(SynthJob(out=tmp_path / "s", num_samples=2, backgrounds=f"folder:{folder}",
                                config=SynthConfig(view_sizes=(64, 48))))
    assert report.samples == 2 and report.skipped == 0


@pytest.mark.slow
def test_the_check_is_on_by_default_and_no_verify_shards_turns_it_off(shards, tmp_path):
    damage_member(shards / "codo-000001.tar", "000000005.view0.jpg")
    runs = {}
    for flag in ("--verify-shards", "--no-verify-shards"):
        run = tmp_path / flag
        proc = cli("codo-train", "run", "--shards", str(shards), "--steps", "1", "--batch-size", "8",
                   "--arch", "resnet18", "--out", str(run), flag, check=True)
        verify = json.loads((run / "config.json").read_text())["verify_shards"]
        bad_samples = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])["bad_samples"]
        runs[flag] = verify, bad_samples, f"shard {shards / 'codo-000001.tar'}, key" in proc.stderr
    # the batch of 8 takes every good record of the epoch, after those of the 4 bad the shuffle put first
    verify, bad_samples, named = runs["--verify-shards"]
    assert verify and named and 1 <= bad_samples <= 4
    assert runs["--no-verify-shards"] == (False, 0, False)
    again = cli("codo-train", "run", "--shards", str(shards), "--steps", "1", "--batch-size", "8", "--arch",
                "resnet18", "--out", str(tmp_path / "--verify-shards"), "--no-verify-shards", check=True)
    assert "nothing left to train" in again.stderr  # the same run: the check is not part of what it computes
