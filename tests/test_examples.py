"""The examples run as documented (kept short), so they cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import BIN

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script, args, expect", [
    ("online_training_loop.py", ["--steps", "2", "--batch-size", "2", "--workers", "2"], "step 2: loss"),
    ("byo_ssl_transforms.py", ["--steps", "2"], "step 2: "),
])
def test_example_runs(script, args, expect):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout


REPO = EXAMPLES.parent
DATA = Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data")
HELD_OUT = {"food", "plants", "vehicles"}


def run_micro_experiment(out: Path) -> subprocess.CompletedProcess:
    """examples/micro_experiment.sh at smoke size (2 steps, 2 iterations), with this interpreter's CLIs."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DATA": str(DATA), "OUT": str(out),
           "STEPS": "2", "BATCH": "2", "PROBE_N": "4", "FT_TRAIN": "4", "FT_VAL": "2", "ITERS": "2"}
    return subprocess.run(["bash", str(EXAMPLES / "micro_experiment.sh")], env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / ".complete").is_file(), reason=f"no real test data in {DATA}: run scripts/fetch_test_data.sh")
def test_micro_experiment_splits_the_data_writes_its_table_and_resumes(tmp_path):
    out = tmp_path / "mx"
    proc = run_micro_experiment(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (out / "results.md").read_text().splitlines()
    assert table[0].startswith("| init | probe top-1 | probe top-5 | bbox AP |") and len(table) == 5
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in table[2:]]
    assert [c[0] for c in cells] == ["random init", "image-level BYOL", "CoDo"]
    assert all(0.0 <= float(x) <= 100.0 for c in cells for x in c[1:])
    assert proc.stdout.endswith("\n".join(table) + "\n")
    results = json.loads((out / "results.json").read_text())
    # both probes measure the same random model (same seed) on the same pastes
    assert results["probe-codo"]["random_init"] == results["probe-image"]["random_init"]
    for objective in ("codo", "image"):
        config = json.loads((out / "runs" / objective / "config.json").read_text())
        assert config["objective"] == objective and config["steps"] == 2 and config["arch"] == "resnet18"
    # held-out classes never reach pretraining; fine-tuning train and val share classes, not files
    inst, bgs = out / "data" / "instances", out / "data" / "backgrounds"
    assert HELD_OUT.isdisjoint(p.name for p in (inst / "pretrain").iterdir())
    train, val = ({p.relative_to(inst / "heldout" / s).as_posix() for p in (inst / "heldout" / s).rglob("*.png")}
                  for s in ("train", "val"))
    assert {p.split("/")[0] for p in train} == {p.split("/")[0] for p in val} == HELD_OUT and not train & val
    for cls in HELD_OUT:  # every third file of each class is a val file
        n_train, n_val = (sum(p.startswith(f"{cls}/") for p in files) for files in (train, val))
        assert n_val == (n_train + n_val) // 3
    held, used = ({p.name for p in (bgs / s).iterdir()} for s in ("heldout", "pretrain"))
    assert (len(held), len(used)) == (18, 35) and not held & used
    categories = json.loads((out / "coco" / "train" / "annotations" / "instances.json").read_text())["categories"]
    assert sorted(c["name"] for c in categories) == sorted(HELD_OUT)
    again = run_micro_experiment(out)  # resumes: every step is found done, the table is the same
    assert again.returncode == 0 and "finetune" not in again.stderr and "probe" not in again.stderr
    assert (out / "results.md").read_text().splitlines() == table
