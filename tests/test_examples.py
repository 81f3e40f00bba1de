"""The examples run as documented (kept short), so they cannot rot."""

import json
import os
import shutil
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


def transfer_command(out: Path, *more: str) -> list[str]:
    """examples/transfer_experiment.py at smoke size (2 steps, 2 iterations), with this interpreter; its unit
    files go to OUT/units."""
    return [sys.executable, str(EXAMPLES / "transfer_experiment.py"), "--size", "smoke", "--out", str(out),
            "--results", str(out / "units"), "--data", str(DATA), *more]


def run_transfer_experiment(out: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run(transfer_command(out, *more), capture_output=True, text=True, timeout=1200)


INITS = ["random", "supervised", "image", "codo-generic", "codo-downstream"]
METRICS = ["probe top-1", "probe top-5", "overlap bbox AP", "overlap bbox AP50", "disjoint bbox AP",
           "disjoint bbox AP50"]


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / ".complete").is_file(),
                    reason=f"no real test data in {DATA}: run scripts/fetch_test_data.sh")
def test_transfer_experiment_runs_its_units_gates_them_reports_and_resumes_from_unit_files(tmp_path):
    out = tmp_path / "tx"
    stage_a = run_transfer_experiment(out, "--stage", "A")
    assert stage_a.returncode == 0, stage_a.stderr[-3000:]
    units = out / "units"
    assert sorted(p.name for p in units.glob("*-s0.json")) == ["random-s0.json", "supervised-s0.json"]
    proc = run_transfer_experiment(out, "--stage", "all")  # stage B (smoke runs it whatever A shows)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "+ codo-train run" in proc.stderr and "supervised" not in proc.stderr.split("stage A:")[1]
    summary = json.loads((units / "summary.json").read_text())
    assert list(summary["metrics"]) == METRICS
    assert all(list(by_init) == INITS and all(len(v) == 1 and 0 <= v[0] <= 1 for v in by_init.values())
               for by_init in summary["metrics"].values())
    assert sorted(summary["gate"]) == sorted(f"{i}-s0" for i in INITS[1:])  # random init has no gate
    assert "box_head" not in summary["gate"]["image-s0"]["drift"]  # image-level BYOL leaves it at init
    assert all(g["drift"]["layer4"] > 0 for g in summary["gate"].values())
    unit = json.loads((units / "codo-downstream-s0.json").read_text())
    assert set(unit["timing_s"]) == {"pretrain", "probe", "finetune overlap", "finetune disjoint", "total"}
    assert unit["health"]["step"] == 2 and set(unit["metrics"]) == set(METRICS)
    config = json.loads((out / "runs" / "codo-downstream-s0" / "config.json").read_text())
    assert config["objective"] == "codo" and config["backgrounds"].endswith("/backgrounds/downstream-train")
    assert (units / "results.png").stat().st_size > 10_000  # drawn (matplotlib is in the dev extra)
    # a new machine: only the (committed) unit files are left; nothing is trained, probed or fine-tuned again
    for scratch in ("runs", "coco", "data"):
        shutil.rmtree(out / scratch)
    again = run_transfer_experiment(out, "--stage", "all")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not any(f"+ codo-train {cmd}" in again.stderr for cmd in ("run", "probe", "finetune"))
    assert json.loads((units / "summary.json").read_text()) == summary
    assert again.stdout == proc.stdout  # the report: figures, differences, gate and timing tables
    # the split keeps pretraining and fine-tuning instances apart
    inst, bgs = out / "data" / "instances", out / "data" / "backgrounds"
    files = {part: {p.name for p in (inst / part).rglob("*.png")}
             for part in ("pretrain", "ft-overlap/train", "ft-overlap/val", "ft-disjoint/train",
                          "ft-disjoint/val")}
    pretrain = files.pop("pretrain")
    assert all(not pretrain & other for other in files.values())  # no instance file in both
    assert not files["ft-overlap/train"] & files["ft-overlap/val"]
    assert not files["ft-disjoint/train"] & files["ft-disjoint/val"]
    generic, ds_train, ds_val = ({p.name for p in (bgs / s).iterdir()}
                                 for s in ("generic", "downstream-train", "downstream-val"))
    assert (len(ds_train), len(ds_val), len(generic)) == (14, 14, 25) and not ds_train & ds_val
    val = json.loads((out / "coco" / "disjoint-val" / "annotations" / "boxes-view0.json").read_text())
    composites = [im["codo_sample"] for im in val["images"]]
    assert len(composites) == len(set(composites)) == 6  # one image per composite
    assert not any("segmentation" in a for a in val["annotations"])  # boxes only: Faster R-CNN


def _transfer_module():
    sys.path.insert(0, str(EXAMPLES))
    try:
        import transfer_experiment
    finally:
        sys.path.remove(str(EXAMPLES))
    return transfer_experiment


def test_health_gate_needs_every_trained_stage_moved_balanced_and_no_collapse():
    tx = _transfer_module()
    stages = ("stem", "layer1", "layer2", "layer3", "layer4", "fpn", "box_head")
    healthy = {"drift": dict.fromkeys(stages, 0.05), "embedding_std": 0.05}
    assert tx.gate("codo", healthy) == {"passed": True, "drift": dict.fromkeys(stages, 0.05),
                                        "embedding_std": 0.05, "reasons": []}
    low = {**healthy, "drift": {**healthy["drift"], "fpn": 0.02}}
    assert tx.gate("codo", low)["reasons"] == ["fpn drifted 0.0200 < 0.03"]
    assert tx.gate("image", {**healthy, "drift": {**healthy["drift"], "box_head": 0.0}})["passed"]
    spread = {**healthy, "drift": {**healthy["drift"], "stem": 0.6}}  # 12x the median 0.05
    assert tx.gate("supervised", spread)["reasons"] == ["stem drifted 0.6000 > 10x the median 0.0500"]
    collapsed = {**healthy, "embedding_std": 0.01}  # uniform on the 256-d sphere: 0.0625; half: 0.03125
    assert tx.gate("codo", collapsed)["reasons"] == ["embedding std 0.0100 < 0.0312 (collapse)"]
    assert tx.gate("supervised", {"drift": healthy["drift"]})["passed"]  # no projections: no collapse figure


def test_control_separation_is_a_paired_difference_beyond_two_std():
    tx = _transfer_module()
    seeds = [0, 1, 2]

    def unit(init, seed, probe, ap):
        metrics = {m: 0.0 for m in METRICS}
        metrics.update({"probe top-1": probe, "overlap bbox AP50": ap})
        return {"init": init, "seed": seed, "metrics": metrics,
                "gate": None if init == "random" else {"passed": True}}

    units = {(i, s): unit(i, s, p, a) for i, s, p, a in [
        ("random", 0, 0.10, 0.02), ("random", 1, 0.12, 0.03), ("random", 2, 0.11, 0.01),
        ("supervised", 0, 0.25, 0.05), ("supervised", 1, 0.22, 0.06), ("supervised", 2, 0.27, 0.03)]}
    mean, std = tx.paired(units, "probe top-1", "supervised", "random", seeds)
    # diffs 15, 10, 16 points
    assert mean == pytest.approx(0.1367, abs=1e-4) and std == pytest.approx(0.0321, abs=1e-4)
    ok, why = tx.control_separates(units, seeds)
    assert ok and "overlap bbox AP50 +2.7 ± 0.6" in why  # diffs 3, 3, 2 points
    units["supervised", 2]["metrics"]["overlap bbox AP50"] = 0.0  # diffs 3, 3, -1: mean 1.7 < 2 x 2.3
    assert not tx.control_separates(units, seeds)[0]
    units["supervised", 2]["gate"] = {"passed": False}
    assert tx.paired(units, "probe top-1", "supervised", "random", seeds) is None
    assert "failed its gate" in tx.control_separates(units, seeds)[1]
