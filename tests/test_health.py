"""Training health: drift and collapse figures against hand values, in metrics.jsonl at the right steps
(and exactly so after a resume), in TensorBoard event files, in `codo-train export`; balanced layers
with the default optimiser on the real data."""

import json
import math
import os
import statistics
import sys
from pathlib import Path

import pytest
import torch

from codo_aug import InputError, SynthConfig
from codo_train.board import TensorBoard
from codo_train.config import TrainConfig
from codo_train.health import drift, drift_table, embedding_std
from codo_train.trainer import train

from .helpers import cli

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data")
ONLINE_STAGES = ["stem", "layer1", "layer2", "layer3", "layer4", "fpn", "box_head", "projector", "predictor"]


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def short_run(out: Path, on_step=lambda m: None, **settings) -> None:
    """A small online run on the built-in sample data (resnet18, two 64-px views, batch 2)."""
    cfg = TrainConfig(out=str(out), instances="sample", backgrounds="sample", arch="resnet18", batch_size=2,
                      **{"steps": 3, **settings})
    train(cfg, on_step=on_step, synth=SynthConfig(view_sizes=(64, 64)))


def test_drift_is_each_stages_distance_from_its_initial_weights_over_its_norm():
    w0 = {"online.backbone.body.conv1.weight": torch.tensor([[3.0, 0.0], [0.0, 4.0]]),  # |w0| = 5
          "online.backbone.body.layer1.0.conv1.weight": torch.tensor([[3.0]]),
          "online.backbone.body.layer1.0.conv2.weight": torch.tensor([[4.0]]),
          "predictor.0.weight": torch.tensor([[1.0, 0.0]])}
    now = {"online.backbone.body.conv1.weight": torch.tensor([[3.0, 0.0], [0.0, 5.0]]),  # moved 1 of 5
           "online.backbone.body.bn1.weight": torch.tensor([9.0]),  # BN affine: left out
           "online.backbone.body.layer1.0.conv1.weight": torch.tensor([[3.0]]),
           "online.backbone.body.layer1.0.conv2.weight": torch.tensor([[9.0]]),  # moved 5 of |(3, 4)| = 5
           "predictor.0.weight": torch.tensor([[1.0, 1.0]]),
           "target.backbone.body.conv1.weight": torch.tensor([[3.0, 0.0], [0.0, 4.0]]),  # still w0
           "queues.size.targets": torch.ones(2, 2)}  # in no stage
    figures = drift(now, w0)
    assert figures == {"online": {"stem": pytest.approx(0.2), "layer1": pytest.approx(1.0),
                                  "predictor": pytest.approx(1.0)},
                       "target": {"stem": 0.0}}
    assert drift_table(figures).splitlines() == [
        "stage               online    target",
        "stem                0.2000    0.0000",
        "layer1              1.0000         -",
        "predictor           1.0000         -",
    ]


def test_embedding_std_is_about_one_over_root_dim_when_spread_and_zero_when_collapsed():
    spread = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [0.0, -1.0]])  # unit rows +-e1, +-e2
    assert embedding_std(spread) == pytest.approx(math.sqrt(2 / 3))  # each dim: (1, -1, 0, 0), n - 1 = 3
    assert embedding_std(torch.tensor([[1.0, 2.0]] * 5)) == 0.0


@pytest.mark.slow
def test_health_figures_land_every_n_steps_and_at_the_last_and_survive_a_resume(tmp_path):
    reference = tmp_path / "reference"
    short_run(reference, steps=5, health_every=2, save_every=2)
    logged = rows(reference)
    assert [r["step"] for r in logged if "drift" in r] == [2, 4, 5]
    assert not {"drift", "target_drift", "embedding_std"} & logged[0].keys()
    for r in logged[1], logged[3], logged[4]:
        assert list(r["drift"]) == ONLINE_STAGES and list(r["target_drift"]) == ONLINE_STAGES[:-1]
        assert all(0 < r["target_drift"][s] < r["drift"][s] for s in ONLINE_STAGES[:-1])
        assert 0 < r["embedding_std"] <= 1 / math.sqrt(256)  # the mean std of unit vectors in 256 dims
    assert logged[4]["drift"]["layer4"] > logged[1]["drift"]["layer4"]

    class Killed(Exception):
        pass

    def stop_at_step_3(record):
        if record.get("step") == 3:
            raise Killed

    resumed = tmp_path / "resumed"
    with pytest.raises(Killed):
        short_run(resumed, stop_at_step_3, steps=5, health_every=2, save_every=2)
    short_run(resumed, steps=5, health_every=2, save_every=2)  # from the checkpoint of step 2
    assert rows(resumed)[-1]["drift"] == logged[-1]["drift"]
    assert rows(resumed)[-1]["target_drift"] == logged[-1]["target_drift"]


@pytest.mark.slow
def test_tensorboard_event_files_hold_the_same_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    short_run(run, steps=2, health_every=2, tensorboard=True)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"loss", "lr", "momentum", "drift/stem", "drift/predictor", "target_drift/fpn",
            "embedding_std"} <= set(tags)
    assert [e.step for e in events.Scalars("loss")] == [1, 2]
    last = rows(run)[-1]
    assert events.Scalars("drift/stem")[-1].value == pytest.approx(last["drift"]["stem"], rel=1e-6)


def test_tensorboard_without_its_package_is_one_input_error_with_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were missing
    message = "--tensorboard needs the tensorboard package: pip install 'codo[tensorboard]'"
    with pytest.raises(InputError) as error:
        TensorBoard(tmp_path / "tb", enabled=True)
    assert str(error.value) == message
    TensorBoard(tmp_path / "tb", enabled=False).log({"step": 1, "loss": 1.0})  # off: no import, no file
    assert not (tmp_path / "tb").exists()
    with pytest.raises(InputError) as error:
        short_run(tmp_path / "run", tensorboard=True)
    assert str(error.value) == message and not (tmp_path / "run").exists()  # refused before the run folder


@pytest.mark.slow
def test_export_prints_the_drift_table_of_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    short_run(run, steps=2)
    proc = cli("codo-train", "export", str(run), "--out", str(tmp_path / "w.pth"), check=True)
    lines = proc.stderr.splitlines()
    start = lines.index("drift |w - w0| / |w0| after step 2 (w0 rebuilt from the run's seed):")
    table = {row.split()[0]: row.split()[1:] for row in lines[start + 2:]}
    assert list(table) == ONLINE_STAGES
    last = rows(run)[-1]  # what the trainer measured against the w0 it kept
    assert all(float(table[s][0]) == pytest.approx(last["drift"][s], abs=1e-4) for s in ONLINE_STAGES)
    assert all(float(table[s][1]) == pytest.approx(last["target_drift"][s], abs=1e-4)
               for s in ONLINE_STAGES[:-1])


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / ".complete").is_file(), reason=f"real test data not in {DATA}")
def test_balanced_layers_with_the_default_optimiser_on_real_data(tmp_path):
    """Issue 11: 60 steps at batch 8 with the defaults (LARS, lr 1.0 scaled by sqrt(8/256)) move every
    stage, none more than 10x the median. Measured here: every stage 0.007-0.011, so the floor of 0.005
    is 3x what LARS at a linearly scaled rate gives (0.0015) and SGD's stem blow-up (2.3) is far off."""
    cfg = TrainConfig(out=str(tmp_path / "run"), instances=f"folder:{DATA / 'tuxpaint'}",
                      backgrounds=f"folder:{DATA / 'scratch'}", arch="resnet18", batch_size=8, steps=60)
    train(cfg, synth=SynthConfig(view_sizes=(128, 128, 64)))
    moved = rows(tmp_path / "run")[-1]["drift"]
    median = statistics.median(moved.values())
    assert moved["stem"] <= 1
    assert max(moved.values()) <= 10 * median, moved
    assert median >= 0.005, moved
