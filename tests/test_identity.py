"""Job identity by meaning, not spelling (issue 25): synth, prepare and a training run given their folders
relative or absolute, with a trailing slash, through a symlink or from another working directory are the
same job and resume; another seed, or another folder of the same name elsewhere, is still refused; a
refusal that offers --overwrite says what it discards."""

import json
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import torch

from codo_aug import InputError, RunError, SynthConfig, SynthJob, run_synth
from codo_aug.io.atomic import atomic_open
from codo_aug.io.location import resolve_location, resolve_spec
from codo_aug.prepare import PrepareJob, run_prepare
from codo_aug.shards.index import JOB_FILE
from codo_aug.sources.prepared import MANIFEST
from codo_train.checkpoint import CHECKPOINT, prepare_run, resolve_locations
from codo_train.config import TrainConfig

from .helpers import BIN
from .test_prepared import DATA, copy_files

pytestmark = pytest.mark.skipif(not (DATA / "tuxpaint").is_dir(), reason="real test data not cached")
SMALL = SynthConfig(view_sizes=(64, 64, 32))


@pytest.fixture
def data(tmp_path) -> Path:
    """8 Tux Paint stamps and 4 Scratch backdrops under tmp_path/data/{inst,bg}."""
    copy_files(DATA / "tuxpaint", tmp_path / "data" / "inst", 8, "*.png")
    copy_files(DATA / "scratch", tmp_path / "data" / "bg", 4, "*.jpg")
    return tmp_path / "data"


def synth(out, instances: str, backgrounds: str, on_sample=lambda: None, **kw):
    """4 samples in 2 shards of small views."""
    return run_synth(SynthJob(out, num_samples=4, shard_size=2, instances=instances, backgrounds=backgrounds,
                              config=SMALL, **kw), on_sample)


def tars(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}


def test_locations_resolve_to_one_spelling(tmp_path, monkeypatch):
    (tmp_path / "a" / "imgs").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    real = str((tmp_path / "a" / "imgs").resolve())
    for spelling in ("../a/imgs", "../a/imgs/", "..//a/./imgs", f"{tmp_path}/link/imgs/", f"file://{real}"):
        assert resolve_location(spelling) == real, spelling
    braces = "codo-{000000..000009}.tar"
    assert resolve_location(f"../a/{braces}") == f"{Path(real).parent}/{braces}"
    assert resolve_location("../link/*/x.tar") == f"{Path(real).parent}/*/x.tar"  # patterns kept as written
    assert resolve_location("S3://bucket//shards/run/") == "s3://bucket/shards/run"
    assert (resolve_location(""), resolve_spec(""), resolve_spec("Sample")) == ("", "", "sample")
    assert resolve_spec("Folder:../link/imgs/") == resolve_spec(f"folder:{real}") == f"folder:{real}"
    assert resolve_spec("folder:imgs") != resolve_spec("folder:../a/imgs")  # b/imgs is another folder
    (tmp_path / "b" / "s3").mkdir()  # a local folder named like the scheme does not split a URL spec
    assert resolve_spec("prepared:s3://bucket//store/") == "prepared:s3://bucket/store"


def test_synth_resumes_however_its_folders_are_spelled(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = synth("shards", "folder:data/inst", "folder:data/bg")
    shards = tmp_path / "shards"
    written = tars(shards)
    assert first.resumed == 0 and len(written) == 2
    (shards / "codo-000001.tar").unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = synth(f"{shards}/", f"folder:{data}/inst/", "Folder:..//data/bg/")
    assert (again.resumed, len(again.shards)) == (1, 2) and tars(shards) == written
    (tmp_path / "link").symlink_to(data)
    assert synth("../shards", "folder:../link/inst", f"folder:{tmp_path}/link/bg").resumed == 2


def test_synth_still_refuses_another_seed_or_another_folder_of_the_same_name(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synth("shards", "folder:data/inst", "folder:data/bg")
    with pytest.raises(InputError, match=r"differs in: seed\); .*pass --overwrite "
                                         r"\(discards the 2 finished shards\)$"):
        synth("shards", "folder:data/inst", "folder:data/bg", seed=1)
    shutil.copytree(data, tmp_path / "copy" / "data")  # the same files, in another place
    monkeypatch.chdir(tmp_path / "copy")
    with pytest.raises(InputError, match=r"differs in: source_identity\)"):
        synth(tmp_path / "shards", "folder:data/inst", "folder:data/bg")


def test_a_job_file_that_holds_specs_as_typed_is_still_the_same_job(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synth("shards", "folder:data/inst", "folder:data/bg")
    job = tmp_path / "shards" / JOB_FILE
    old = json.loads(job.read_text())  # as codo wrote it before specs were stored resolved
    for role, spec in (("instances", "folder:data/inst"), ("backgrounds", "folder:data/bg/")):
        assert old["source_identity"][role]["spec"] == resolve_spec(spec)
        old["source_identity"][role]["spec"] = spec
    job.write_text(json.dumps(old))
    (tmp_path / "shards" / "codo-000000.tar").unlink()
    assert synth(f"{tmp_path}/shards", f"folder:{data}/inst", "folder:data/bg").resumed == 1


def test_prepare_and_synth_from_a_store_resume_however_spelled(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run_prepare(PrepareJob("folder:data/inst", "instances", Path("store"), config=SMALL, part_size=4))
    store = tmp_path / "store"
    parts = {p.name: p.read_bytes() for p in sorted(store.glob("part-*"))}
    manifest = (store / MANIFEST).read_bytes()
    assert first.written == 2 and len(parts) == 4
    for name in ("part-00001.bin", "part-00001.json", MANIFEST):
        (store / name).unlink()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = run_prepare(PrepareJob("folder:../data/inst/", "instances", store, config=SMALL, part_size=4))
    assert (again.resumed, again.written) == (1, 1)
    assert {p.name: p.read_bytes() for p in sorted(store.glob("part-*"))} == parts
    assert (store / MANIFEST).read_bytes() == manifest, "the manifest does not depend on the spelling"
    synth("shards", "prepared:../store", "folder:../data/bg")
    assert synth(f"{tmp_path}/elsewhere/shards/", f"prepared:{store}/", f"folder:{data}/bg").resumed == 2
    with pytest.raises(InputError, match=r"differs in: .* \(discards the 2 finished parts\)$"):
        run_prepare(PrepareJob("folder:../data/inst", "instances", store, config=SMALL, part_size=3))


def _fake_run(folder: Path, step: int, typed: bool = False, **settings) -> dict:
    """A run config of `settings` with a checkpoint at `step` in `folder`: its locations resolved, as codo
    writes them, or as typed (`typed`), as codo wrote them before."""
    config = TrainConfig(**settings).to_dict()
    stored = config if typed else resolve_locations(config)
    (folder / CHECKPOINT).parent.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(stored))
    torch.save({"step": step, "config": stored, "model": {}}, folder / CHECKPOINT)
    return config


ONLINE = {"out": "run", "instances": "folder:data/inst", "backgrounds": "folder:data/bg/", "arch": "resnet18"}


def test_a_run_resumes_however_its_folders_are_spelled(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _fake_run(tmp_path / "run", 1, **ONLINE)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    respelled = {**config, "out": f"{tmp_path}/run/", "instances": "folder:../data//inst/",
                 "backgrounds": f"Folder:{data}/bg"}
    assert prepare_run(tmp_path / "run", False, respelled, respelled)["step"] == 1
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    run, inst = (tmp_path / "run").resolve(), (data / "inst").resolve()
    assert (written["out"], written["instances"]) == (str(run), f"folder:{inst}")
    shutil.copytree(tmp_path / "run", tmp_path / "moved")  # a run folder moved or copied is the same run
    assert prepare_run(tmp_path / "moved", False, respelled, respelled)["step"] == 1
    shutil.copytree(data, tmp_path / "elsewhere" / "data")  # the same files, in another place
    with pytest.raises(InputError, match=r"differs in: backgrounds, instances\); run the same command to "
                                         r"resume it, .* \(discards its checkpoint at step 1\)$"):
        prepare_run(tmp_path / "run", False, {**config, "out": "../run"}, config)


def test_a_checkpoint_that_holds_its_folders_as_typed_is_still_the_same_run(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _fake_run(tmp_path / "run", 1, typed=True, **ONLINE)
    absolute = {**config, "out": f"{tmp_path}/run", "instances": f"folder:{data}/inst",
                "backgrounds": f"folder:{data}/bg"}
    assert prepare_run(tmp_path / "run", False, absolute, absolute)["step"] == 1


def test_a_run_asked_for_other_steps_says_the_schedule_spans_the_steps(tmp_path):
    config = _fake_run(tmp_path / "run", 6, out=str(tmp_path / "run"), shards=str(tmp_path), steps=6)
    with pytest.raises(InputError) as refused:
        prepare_run(tmp_path / "run", False, {**config, "steps": 12}, config)
    assert str(refused.value) == (
        f"--out {tmp_path / 'run'} holds a different run (differs in: steps): its learning-rate warm-up and "
        "cosine and its target momentum span its 6 steps, so 12 steps is a new run; give --steps 6 to resume "
        "it, or a new --out to train 12 steps from the start, or pass --overwrite (discards its checkpoint "
        "at step 6)")
    with pytest.raises(InputError, match=r"differs in: seed, steps\): .* run the same command to resume it"):
        prepare_run(tmp_path / "run", False, {**config, "steps": 12, "seed": 1}, config)


def _train(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = ["run", "--steps", "2", "--arch", "resnet18", "--batch-size", "2", "--save-every", "1", *args]
    return subprocess.run([str(BIN / "codo-train"), *command], cwd=cwd, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_codo_train_run_from_another_folder_is_the_same_run(train_shards, tmp_path):
    (tmp_path / "shards").symlink_to(train_shards)
    first = _train(tmp_path, "--shards", "shards", "--out", "run")
    assert first.returncode == 0, first.stderr
    (tmp_path / "elsewhere").mkdir()
    again = _train(tmp_path / "elsewhere", "--shards", f"{train_shards}/", "--out", f"{tmp_path}/run/")
    assert again.returncode == 0 and "nothing left to train: the run in" in again.stderr, again.stderr
    more = _train(tmp_path / "elsewhere", "--shards", "../shards", "--out", "../run", "--steps", "4")
    assert more.returncode == 2 and more.stderr.strip().splitlines() == [
        "codo-train: error: --out ../run holds a different run (differs in: steps): its learning-rate "
        "warm-up and cosine and its target momentum span its 2 steps, so 4 steps is a new run; give "
        "--steps 2 to resume it, or a new --out to train 4 steps from the start, or pass --overwrite "
        "(discards its checkpoint at step 2)"]


def test_a_second_writer_here_keeps_the_temporary_files_a_running_one_writes(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synth("shards", "folder:data/inst", "folder:data/bg")
    for shard in tmp_path.glob("shards/*.tar"):
        shard.unlink()
    gone = subprocess.Popen(["true"])
    gone.wait()
    name = ".codo-00000{}.tar.{}.{}.0123abcd.tmp"
    live = tmp_path / "shards" / name.format(0, socket.gethostname(), os.getpid())  # this test's process
    dead = tmp_path / "shards" / name.format(1, socket.gethostname(), gone.pid)
    for temp in (live, dead):
        temp.write_bytes(b"half a shard")
    synth("shards", "folder:data/inst", "folder:data/bg")
    assert live.exists() and not dead.exists()


def test_a_temporary_file_another_process_removed_is_a_one_line_error(tmp_path):
    removed = r"^\S+/x: another process removed its temporary file \.x\..*\.tmp while this one wrote it"
    with pytest.raises(RunError, match=removed + r" .*; run the same command again once the other has ended"):
        with atomic_open(tmp_path / "x") as fh:
            fh.write(b"data")
            for temp in tmp_path.glob(".x.*.tmp"):
                temp.unlink()
    assert list(tmp_path.iterdir()) == []


def test_two_writers_of_one_node_rank_both_finish_with_the_same_bytes(data, tmp_path, monkeypatch):
    """The second starts while the first is inside shard 0: it must not remove the first's temporary file."""
    monkeypatch.chdir(tmp_path)
    synth("ref", "folder:data/inst", "folder:data/bg")
    inside, go, failed = threading.Event(), threading.Event(), []

    def first_sample_waits() -> None:
        inside.set()
        go.wait()

    def first() -> None:
        try:
            synth("both", "folder:data/inst", "folder:data/bg", on_sample=first_sample_waits)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            failed.append(exc)
        finally:
            inside.set()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        inside.wait()
        assert len(list((tmp_path / "both").glob(".codo-000000.tar.*.tmp"))) == 1
        second = synth("both", "folder:data/inst", "folder:data/bg")
    finally:
        go.set()
        thread.join()
    assert failed == [] and second.resumed == 0
    assert tars(tmp_path / "both") == tars(tmp_path / "ref") and not list((tmp_path / "both").glob(".*.tmp"))


def test_a_killed_writer_not_yet_reaped_counts_as_ended(tmp_path):
    """A worker killed with its job stays a zombie until its new parent reaps it; the resume that starts at
    once must clear its temporary file, not keep it as a live writer's."""
    import time

    from codo_aug.io.atomic import in_flight_here, left_by_dead_process

    def temp(pid: int) -> str:
        return str(tmp_path / f".codo-000001.tar.{socket.gethostname()}.{pid}.0123abcd.tmp")

    live = subprocess.Popen(["sleep", "30"])
    ended = subprocess.Popen(["true"])  # not waited for: a zombie once it exits
    try:
        stat = Path(f"/proc/{ended.pid}/stat")
        for _ in range(2000):
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.005)
        else:
            pytest.skip("the child never showed as a zombie in /proc")
        assert left_by_dead_process(temp(ended.pid)) and not in_flight_here(temp(ended.pid))
        assert in_flight_here(temp(live.pid)) and not left_by_dead_process(temp(live.pid))
    finally:
        live.kill()
        live.wait()
        ended.wait()
