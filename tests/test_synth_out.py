"""`codo-aug synth --out` is checked before anything is written (a foreign folder, a path under a file,
a place that cannot be written) and --overwrite only ever removes codo's own files; sources where
nothing is usable fail in one line. Every user-caused failure here exits 2."""

import json
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import SynthJob, run_synth
from codo_aug.io.atomic import atomic_open, temp_name

from .helpers import cli


def one_line_error(proc, needle: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0], lines[0]


def photos(folder: Path, n: int = 3, size: int = 96) -> Path:
    for k in range(n):
        path = folder / f"c{k % 2}" / f"p{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return folder


def synth(out: Path, data: Path, *extra: str):
    return cli("codo-aug", "synth", "--out", str(out), "--num-samples", "2", "--instances", f"folder:{data}",
               "--backgrounds", f"folder:{data}", *extra)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_that_is_not_a_codo_job_is_refused_even_with_overwrite(tmp_path):
    data = photos(tmp_path / "data")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    (out / "figures").mkdir()
    for extra in ((), ("--overwrite",), ("--dry-run",)):
        one_line_error(synth(out, data, *extra),
                       f"--out {out} is a non-empty folder that is not a codo job "
                       "(it holds 'figures' and 1 more); choose a new or empty directory")
    assert tree(out) == {"thesis.tex": b"precious"}


def test_writes_of_one_file_at_once_never_share_a_temporary_file(tmp_path):
    """Two nodes writing the same file (a manifest, _info.json) each write their own temporary file."""
    assert temp_name("a.json") != temp_name("a.json")
    with atomic_open(tmp_path / "a.json") as first:
        first.write(b"first")
        with atomic_open(tmp_path / "a.json") as second:
            second.write(b"second")
    assert (tmp_path / "a.json").read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_node_removes_only_its_own_shards_temporary_files(tmp_path):
    data = photos(tmp_path / "data")
    out = tmp_path / "job"
    spec = f"folder:{data}"
    job = SynthJob(out, 2, instances=spec, backgrounds=spec, shard_size=1, num_nodes=2)
    run_synth(job)
    ended = subprocess.Popen(["true"])
    ended.wait()
    host = socket.gethostname()
    mine = out / f".codo-000000.tar.{host}.{ended.pid}.0123abcd.tmp"  # this node's, its process gone
    mine_elsewhere = out / ".codo-000000.tar.other-host.1.0123abcd.tmp"  # this node rank on another machine
    entry = out / "_index" / f".codo-000000.json.{host}.{ended.pid}.0123abcd.tmp"
    others, other_entry = out / temp_name("codo-000001.tar"), out / "_index" / temp_name("codo-000001.json")
    mine_live = out / temp_name("codo-000000.tar")  # this very process: a second job of this node rank
    info_dead = out / f"._info.json.{host}.{ended.pid}.0123abcd.tmp"  # this machine, process gone
    info_elsewhere = out / f"._info.json.other-host.{ended.pid}.0123abcd.tmp"
    info_live = out / temp_name("_info.json")  # this very process: still writing
    kept = (others, other_entry, info_elsewhere, info_live, mine_live)
    for path in (mine, mine_elsewhere, entry, info_dead, *kept):
        path.write_bytes(b"half")  # node 0 killed while writing; node 1 writing now
    assert run_synth(job).resumed == 1
    assert not any(path.exists() for path in (mine, mine_elsewhere, entry, info_dead))
    assert all(path.exists() for path in kept)


def test_overwrite_keeps_files_that_are_not_codos(tmp_path):
    data = photos(tmp_path / "data")
    out = tmp_path / "job"
    assert synth(out, data).returncode == 0
    (out / "notes.txt").write_text("mine")
    old = (out / "codo-000000.tar").read_bytes()
    proc = synth(out, data, "--overwrite", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "codo-000000.tar").read_bytes() != old
    assert json.loads((out / "_info.json").read_text())["seed"] == 5


def test_out_under_a_file_is_refused_before_anything_is_written(tmp_path):
    data = photos(tmp_path / "data")
    (tmp_path / "a-file").write_text("x")
    one_line_error(synth(tmp_path / "a-file" / "out", data),
                   f"--out {tmp_path / 'a-file' / 'out'} lies under {tmp_path / 'a-file'}, which is a file")
    one_line_error(synth(tmp_path / "a-file", data), "exists and is not a directory")
    assert (tmp_path / "a-file").read_text() == "x"


@pytest.mark.skipif(not Path("/proc/self").is_dir(),
                    reason="needs Linux /proc, where nobody may create folders")
def test_out_in_a_place_that_cannot_be_written_is_an_input_error(tmp_path):
    proc = synth(Path("/proc/codo-out"), photos(tmp_path / "data"))
    assert proc.returncode == 2 and "--out /proc/codo-out: cannot" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sources_where_every_file_is_bad_fail_in_one_line(tmp_path):
    data = photos(tmp_path / "data")
    bad = tmp_path / "bad" / "n01"
    bad.mkdir(parents=True)
    (bad / "a.JPEG").write_bytes(b"")
    (bad / "b.JPEG").write_bytes(b"not an image")
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--instances", f"imagenet:{bad.parent}",
               "--backgrounds", f"folder:{data}")
    one_line_error(proc, "imagenet source: no readable image under")
    assert "2 files skipped (unreadable: 1, zero-byte: 1)" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_summary_line_names_cutout_kinds_and_skipped_files(tmp_path):
    data = photos(tmp_path / "data", n=4)
    (data / "c0" / "zero.jpg").write_bytes(b"")
    photos(tmp_path / "tiny", n=1, size=20)  # an instance (>= 8 px), not a background (< 32 px)
    (tmp_path / "tiny" / "c0" / "p0.jpg").rename(data / "c1" / "tiny.jpg")
    job = SynthJob(out=tmp_path / "o", num_samples=3, shard_size=2, instances=f"folder:{data}",
                   backgrounds=f"folder:{data}")
    report = run_synth(job)
    assert report.cut_by == {"box": 0, "mask": 0, "rect": 5} and report.skipped == 2
    assert report.summary() == (f"wrote 3 samples in 2 shard(s) to {tmp_path / 'o'}; "
                                "instance source: 0 from boxes, 0 from masks, 5 random rects; "
                                "2 files skipped (too-small: 1, zero-byte: 1) (see _info.json)")
    backgrounds = json.loads((tmp_path / "o" / "_info.json").read_text())["sources"]["backgrounds"]
    assert backgrounds["items"] == 4
    assert backgrounds["skipped"]["by_reason"] == {"too-small": 1, "zero-byte": 1}
    again = run_synth(job)
    assert again.summary().startswith("wrote 3 samples in 2 shard(s) (2 already there) to ")
