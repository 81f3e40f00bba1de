"""The examples run as documented (kept short), so they cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script, args, expect", [
    ("online_training_loop.py", ["--steps", "2", "--batch-size", "2", "--workers", "2"], "step 2: loss"),
    ("byo_ssl_transforms.py", ["--steps", "2"], "step 2: "),
])
def test_example_runs(script, args, expect):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout


REPO = EXAMPLES.parent
DATA = Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data")


def transfer_command(out: Path) -> list[str]:
    """examples/transfer_experiment.py at smoke size (2 steps, 2 iterations), with this interpreter."""
    return [sys.executable, str(EXAMPLES / "transfer_experiment.py"), "--size", "smoke", "--out", str(out),
            "--data", str(DATA)]


def run_transfer_experiment(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(transfer_command(out), capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / ".complete").is_file(),
                    reason=f"no real test data in {DATA}: run scripts/fetch_test_data.sh")
def test_transfer_experiment_splits_the_data_writes_its_tables_and_resumes(tmp_path):
    out = tmp_path / "tx"
    proc = run_transfer_experiment(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "results.md").read_text()
    assert proc.stdout == text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| init")]
    inits = ["random", "image", "codo-generic", "codo-downstream", "supervised"]
    assert [r.split("|")[1].strip() for r in rows] == inits * 3  # two fine-tuning arms, then the probe
    results = json.loads((out / "results.json").read_text())
    for init, (objective, backgrounds) in {"image": ("image", "generic"), "codo-generic": ("codo", "generic"),
                                           "codo-downstream": ("codo", "downstream-train"),
                                           "supervised": ("supervised", "generic")}.items():
        config = json.loads((out / "runs" / f"{init}-s0" / "config.json").read_text())
        assert (config["objective"] == objective
                and config["backgrounds"].endswith(f"/backgrounds/{backgrounds}"))
        assert config["steps"] == 2 and config["arch"] == "resnet18"
    # every probe measures the same random model on the same pastes
    assert len({json.dumps(results["probe"][i]["0"]["random_init"]) for i in inits[1:]}) == 1
    inst, bgs = out / "data" / "instances", out / "data" / "backgrounds"
    files = {part: {p.name for p in (inst / part).rglob("*.png")}
             for part in ("pretrain", "ft-overlap/train", "ft-overlap/val", "ft-disjoint/train",
                          "ft-disjoint/val")}
    pretrain = files.pop("pretrain")
    assert all(not pretrain & other for other in files.values())  # no instance file in both
    assert {p.name for p in (inst / "ft-overlap" / "train").iterdir()} <= {
        p.name for p in (inst / "pretrain").iterdir()}
    assert {p.name for p in (inst / "ft-disjoint" / "train").iterdir()}.isdisjoint(
        p.name for p in (inst / "pretrain").iterdir())
    assert not files["ft-overlap/train"] & files["ft-overlap/val"]
    assert not files["ft-disjoint/train"] & files["ft-disjoint/val"]
    generic, ds_train, ds_val = ({p.name for p in (bgs / s).iterdir()}
                                 for s in ("generic", "downstream-train", "downstream-val"))
    assert (len(ds_train), len(ds_val), len(generic)) == (14, 14, 25) and not ds_train & ds_val
    val = json.loads((out / "coco" / "disjoint-val" / "annotations" / "view0.json").read_text())
    composites = [im["codo_sample"] for im in val["images"]]
    assert len(composites) == len(set(composites)) == 6  # one image per composite
    again = run_transfer_experiment(out)  # resumes: every step is found done, the tables are the same
    assert again.returncode == 0 and "+ codo-" not in again.stderr
    assert (out / "results.md").read_text() == text
    subset = subprocess.run([*transfer_command(out), "--inits", "random,supervised", "--arms", "overlap"],
                            capture_output=True, text=True, timeout=600)  # a subset of what is done: a table
    assert subset.returncode == 0 and "+ codo-" not in subset.stderr
    rows = [line.split("|")[1].strip() for line in subset.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["init", "random", "supervised", "init", "random", "supervised"]  # overlap arm, probe
    assert "disjoint" not in subset.stdout


@pytest.mark.parametrize("inits, says", [("random,foo", "unknown foo"), ("image", "must include random")])
def test_transfer_experiment_refuses_unknown_or_baseless_inits(tmp_path, inits, says):
    proc = subprocess.run([*transfer_command(tmp_path), "--inits", inits], capture_output=True, text=True)
    assert proc.returncode == 2 and says in proc.stderr and not (tmp_path / "data").exists()
