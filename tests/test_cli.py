"""The CLIs as a user meets them: help, one-line errors with exit code 2, counted skips."""

import json

import numpy as np
import pytest
from PIL import Image

from .helpers import cli


def assert_one_line_error(proc, code: int, needle: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in lines[0]


@pytest.mark.parametrize("prog, words", [("codo-aug", "synth"), ("codo-train", "run")])
def test_help_lists_the_commands(prog, words):
    proc = cli(prog, "--help")
    assert proc.returncode == 0 and words in proc.stdout


@pytest.mark.parametrize("args, section", [(("codo-aug", "synth"), "[synth]"),
                                           (("codo-train", "run"), "[train]")])
def test_help_shows_the_config_file_section(args, section):
    proc = cli(*args, "--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0 and f"(top level or {section})" in proc.stdout


def make_photos(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"p{i}.jpg")


def test_missing_path(tmp_path):
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--backgrounds", "folder:/does/not/exist")
    assert_one_line_error(proc, 2, "path does not exist: /does/not/exist")
    assert not (tmp_path / "o").exists(), "nothing is written for bad input"


def test_unknown_kind(tmp_path):
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--instances", "lvis:/x")
    assert_one_line_error(proc, 2, "unknown source kind 'lvis'")


def test_json_that_is_not_coco(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": "world"}))
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"),
               "--instances", f"coco:{tmp_path / 'x.json'}")
    assert_one_line_error(proc, 2, "is not a COCO instances file")


def test_folder_with_no_readable_image(tmp_path):
    (tmp_path / "bg").mkdir()
    (tmp_path / "bg" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 nope")
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"),
               "--backgrounds", f"folder:{tmp_path / 'bg'}")
    assert_one_line_error(proc, 2, "no readable image under")


def test_invalid_option_values(tmp_path):
    assert_one_line_error(cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--num-samples", "0"), 2,
                          "invalid num_samples=0")
    assert_one_line_error(cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--num-samples",
                              "1000000001"), 2, "invalid num_samples=1000000001: must be in 1..1000000000")
    assert_one_line_error(cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--image-format", "gif"), 2,
                          "invalid image_format='gif'")
    assert_one_line_error(cli("codo-train", "run", "--shards", str(tmp_path / "none"),
                              "--out", str(tmp_path / "r")), 2, "no shards match")


def test_a_different_job_in_out_is_refused_unless_overwrite(sample_shards, tmp_path):
    proc = cli("codo-aug", "synth", "--out", str(sample_shards), "--num-samples", "2")
    assert_one_line_error(proc, 2, "holds a different job (differs in: num_samples, shard_size); "
                                   "run the same command to finish it, or choose a new directory or pass "
                                   "--overwrite")
    out = tmp_path / "o"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "5", "--shard-size", "2", check=True)
    bad = cli("codo-aug", "synth", "--out", str(out), "--num-samples", "1", "--overwrite",
              "--instances", "folder:/nope")
    assert bad.returncode == 2 and len(list(out.glob("*.tar"))) == 3, \
        "bad input must not delete the old shards"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "1", "--overwrite", check=True)
    assert sorted(p.name for p in out.glob("*.tar")) == ["codo-000000.tar"]
    assert json.loads((out / "_info.json").read_text())["num_samples"] == 1
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "codo-000000.tar").write_bytes(b"x")
    assert_one_line_error(cli("codo-aug", "synth", "--out", str(tmp_path / "foreign")), 2,
                          "shards of an unknown job")


def test_corrupt_and_zero_byte_images_are_skipped_and_counted(tmp_path):
    bg = tmp_path / "bg"
    make_photos(bg)
    (bg / "zero.jpg").write_bytes(b"")
    (bg / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "o"
    proc = cli("codo-aug", "synth", "--out", str(out), "--num-samples", "6", "--backgrounds", f"folder:{bg}")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 6 samples in 1 shard(s)" in proc.stderr
    assert "2 files skipped (unreadable: 1, zero-byte: 1)" in proc.stderr
    info = json.loads((out / "_info.json").read_text())
    skipped = info["sources"]["backgrounds"]["skipped"]
    assert skipped["total"] == 2 and skipped["by_reason"] == {"unreadable": 1, "zero-byte": 1}
    assert skipped["examples"] == {"unreadable": [str(bg / "corrupt.png")],
                                   "zero-byte": [str(bg / "zero.jpg")]}
    verbose = cli("codo-aug", "synth", "--out", str(tmp_path / "v"), "--num-samples", "1",
                  "--backgrounds", f"folder:{bg}", "--verbose")
    assert f"skipped {bg / 'zero.jpg'}: zero-byte" in verbose.stderr
    assert info["sources"]["backgrounds"]["items"] == 3
