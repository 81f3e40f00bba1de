"""Objectives as registered strategies with the model config in the checkpoint (issue 26 points 1 and 2):
the same seed gives the losses it gave before; an objective from one file outside the package trains;
checkpoints hold the model config, and those written before it load, export and resume."""

import json
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from codo_aug import InputError, SynthConfig, SynthJob, run_synth
from codo_train import TrainConfig, train
from codo_train.checkpoint import load_checkpoint
from codo_train.evaluate.probe import load_model
from codo_train.export.write import export
from codo_train.models.codo import CoDoModel
from codo_train.models.config import ModelConfig
from codo_train.models.supervised import SupervisedModel
from codo_train.objectives import OBJECTIVES
from codo_train.optim import group_names, renamed_state
from codo_train.upgrade import upgrade

PLUGIN = Path(__file__).with_name("objective_plugin.py")
#: The tiny runs: resnet18, 2 steps of batch 4, SGD at lr 1 on 8 samples of views 96/96/64 (seed 0).
RUNS = {
    "codo": {},
    "codo-infonce-all-image": {"loss": "infonce", "queue_size": 64, "levels": "all", "image_weight": 0.5},
    "image": {"objective": "image"},
    "supervised": {"objective": "supervised"},
}
#: Each run's first 2 steps as main at 255eaa6 computed them (before objectives were strategies): the loss,
#: its terms, the per-level figures and the RoIs per level, as metrics.jsonl has them.
BEFORE = {
    "codo": [
        (3.9862962, {"0-1": 3.9825988, "0-2": 3.9899936},
         {"p2": 2.1804476, "p3": 1.8854961, "p4": 2.0191419, "p5": 1.9362888}, [2, 6, 11, 2]),
        (2.9631679, {"0-1": 2.9572077, "0-2": 2.9691281},
         {"p2": 1.4015296, "p3": 1.5083951, "p4": 1.4708540, "p5": 1.4749529}, [1, 7, 9, 3])],
    "codo-infonce-all-image": [
        (8.0379419, {"p2/0-1": 8.1077366, "p3/0-1": 7.9639330, "p4/0-1": 7.8553424, "p5/0-1": 8.0808697,
                     "image/0-1": 8.2862396, "p2/0-2": 7.8699417, "p3/0-2": 7.8759370, "p4/0-2": 8.0889912,
                     "p5/0-2": 8.1921368, "image/0-2": 8.3269405},
         {"p2": 7.9888391, "p3": 7.9199352, "p4": 7.9721670, "p5": 8.1365032}, [21] * 4),
        (6.7125978, {"p2/0-1": 6.4928527, "p3/0-1": 6.5667286, "p4/0-1": 6.7240925, "p5/0-1": 6.5161524,
                     "image/0-1": 7.8280210, "p2/0-2": 6.4462156, "p3/0-2": 6.6394362, "p4/0-2": 6.6935024,
                     "p5/0-2": 6.5056496, "image/0-2": 7.8294845},
         {"p2": 6.4695339, "p3": 6.6030827, "p4": 6.7087975, "p5": 6.5109010}, [20] * 4)],
    "image": [
        (3.9149489, {"image/0-1": 3.9058511, "image/0-2": 3.9240465}, {}, None),
        (2.8482146, {"image/0-1": 2.8697839, "image/0-2": 2.8266451}, {}, None)],
    "supervised": [
        (2.5158606, {"0": 2.5162695, "1": 2.4989419, "2": 2.5323709}, {}, [2, 6, 11, 2]),
        (2.6170988, {"0": 2.6400435, "1": 2.6210196, "2": 2.5902331}, {}, [1, 7, 9, 3])],
}


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("objectives") / "shards"
    run_synth(SynthJob(out=out, num_samples=8, shard_size=8, seed=0,
                       config=SynthConfig(view_sizes=(96, 96, 64))))
    return out


def _config(out: Path, shards: Path, **settings) -> TrainConfig:
    return TrainConfig(out=str(out), shards=str(shards), arch="resnet18", batch_size=4, workers=0,
                       optimizer="sgd", lr=1.0, **{"steps": 2, **settings})


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _figures(record: dict) -> tuple:
    rois = record["rois_per_level"]
    rois = [rois[f"p{k}"] for k in range(2, 6)] if rois else None
    return record["loss"], record["pairs"], record["levels"], rois


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_a_seed_gives_the_losses_it_gave_before_objectives_were_strategies(tiny_shards, tmp_path, name):
    """Same seed, same losses: the model's initial weights (the supervised classifier's too, drawn after the
    projector and predictor the model no longer has), InfoNCE's queues (now the loss's), the terms and
    their weights, and the per-level figures are what main computed before the change."""
    train(_config(tmp_path / name, tiny_shards, **RUNS[name]))
    for got, (loss, terms, levels, rois) in zip(map(_figures, _records(tmp_path / name)), BEFORE[name],
                                               strict=True):
        assert got[0] == pytest.approx(loss, rel=1e-4)
        assert got[1] == pytest.approx(terms, rel=1e-4) and got[2] == pytest.approx(levels, rel=1e-4)
        assert got[3] == rois


@pytest.fixture
def plugin(monkeypatch) -> str:
    """tests/objective_plugin.py run as a user's file would be (it registers 'siamese'); the registry is as
    it was after the test."""
    monkeypatch.setattr(OBJECTIVES, "_entries", dict(OBJECTIVES._entries))
    runpy.run_path(str(PLUGIN))
    return "siamese"


@pytest.mark.slow
def test_an_objective_registered_from_one_file_outside_the_package_trains_and_exports(plugin, tiny_shards,
                                                                                      tmp_path):
    """The plug-in touches nothing else: the config accepts its name, the trainer builds its model, steps its
    terms and checkpoints its model config, and export rebuilds its initial weights from that alone."""
    assert plugin in OBJECTIVES and list(OBJECTIVES)[:3] == ["codo", "image", "supervised"]
    train(_config(tmp_path / "run", tiny_shards, objective=plugin, health_every=1))
    records = _records(tmp_path / "run")
    assert [sorted(r["pairs"]) for r in records] == [["0-1", "0-2"]] * 2
    assert all(0 < r["loss"] < 4 for r in records) and records[1]["loss"] != records[0]["loss"]
    assert set(records[0]["drift"]) >= {"stem", "layer4", "fpn", "box_head"} and records[0]["levels"] == {}
    assert sum(records[0]["rois_per_level"].values()) > 0
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["model_config"]["objective"] == plugin and ckpt["loss"] == {}
    assert "head.weight" in ckpt["model"] and not any(k.startswith("target.") for k in ckpt["model"])
    report = export(tmp_path / "run", "torchvision", "head", tmp_path / "w.pth")
    assert "box_head" in report.drift_table and report.exported["backbone.body"] > 0


def test_registering_a_taken_name_or_loading_an_unregistered_objective_is_refused(tmp_path):
    with pytest.raises(ValueError, match="^objective 'codo' is registered already"):
        OBJECTIVES.register("codo", OBJECTIVES["image"])
    path = tmp_path / "ckpt.pt"
    torch.save({"step": 1, "model_config": ModelConfig("resnet18", "siamese").to_dict(), "model": {}}, path)
    with pytest.raises(InputError, match="^objective 'siamese' is not registered .registered: codo, image, "
                                         "supervised.; import the module that registers it first$"):
        load_model(path)


def test_listing_the_objectives_and_losses_loads_no_torch():
    code = ("import sys; from codo_train.config import TrainConfig; from codo_train.losses import LOSSES; "
            "from codo_train.objectives import OBJECTIVES; "
            "print(list(OBJECTIVES), list(LOSSES), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("]")[-1].strip() == "False" and "'supervised'" in out and "'infonce'" in out


def _legacy(ckpt: dict) -> dict:
    """`ckpt` as main wrote it before the model config: the loss's state inside the model's and no model
    config; a supervised model was then CoDoModel + a classifier (online encoder with projector, predictor,
    target), so its weights and the optimizer's groups had those too (with no state: no gradient)."""
    old = {k: v for k, v in ckpt.items() if k not in ("model_config", "loss")}
    config = ModelConfig.from_dict(ckpt["model_config"])
    if config.objective != "supervised":  # InfoNCE's queue buffers were then named `keys`
        loss = {re.sub(r"\.targets$", ".keys", k): v for k, v in ckpt["loss"].items()}
        return {**old, "model": {**ckpt["model"], **loss}}
    then = CoDoModel(config.arch, levels=config.levels, level_rule=config.level_rule)
    then.classifier = nn.Linear(1024, len(config.classes))
    state = {**then.state_dict(), **ckpt["model"]}  # the trained weights; the dropped modules as drawn
    names = [n for n, p in then.named_parameters() if not n.startswith("target.")]
    now = [n for n in names if n in ckpt["model"]]
    optimizer = renamed_state(ckpt["optimizer"], group_names(now, state), group_names(names, state))
    return {**old, "model": state, "optimizer": optimizer}


def test_infonce_queues_written_as_keys_load_as_targets():
    """Checkpoints with a model config but written before the queue buffers were renamed (main at f271a24)
    load with their queues under today's names, the buffers unchanged."""
    queue, ptr = torch.randn(4, 2), torch.tensor(3)
    ckpt = {"model_config": {}, "model": {"online.w": torch.ones(1)},
            "loss": {"queues.size.keys": queue, "queues.size.ptr": ptr, "queues.p2.keys": queue}}
    loss = upgrade(ckpt)["loss"]
    assert sorted(loss) == ["queues.p2.targets", "queues.size.ptr", "queues.size.targets"]
    assert loss["queues.size.targets"] is queue and loss["queues.size.ptr"] is ptr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["codo-infonce-all-image", "supervised"])
def test_checkpoints_written_before_the_model_config_load_export_and_resume(tiny_shards, tmp_path, name):
    """A step-1 checkpoint in the form main wrote it before the change resumes to the losses of a run never
    stopped (step 3 needs the optimizer's momentum of step 1: its state follows the parameters it belongs
    to), and exports and probes as it did."""
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    kept = tmp_path / "step1.pt"

    def keep(record: dict) -> None:  # at step 2's record, last.pt holds step 1
        if record["step"] == 2:
            shutil.copy(full / "checkpoints" / "last.pt", kept)
            shutil.copytree(full, resumed, ignore=shutil.ignore_patterns("*.pt"))

    train(_config(full, tiny_shards, steps=3, save_every=1, **RUNS[name]), on_step=keep)
    legacy = _legacy(torch.load(kept, weights_only=False))
    if name == "supervised":  # as main wrote this run's step-1 checkpoint (measured at 255eaa6)
        optimizer = legacy["optimizer"]
        assert len(legacy["model"]) == 417 and len(optimizer["state"]) == 100
        assert [len(g["params"]) for g in optimizer["param_groups"]] == [38, 74]
    torch.save(legacy, resumed / "checkpoints" / "last.pt")
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["model_config"] \
        == torch.load(kept, weights_only=False)["model_config"]
    report = export(resumed, "torchvision", "head", tmp_path / "w.pth")
    assert "layer4" in report.drift_table and report.step == 1
    model, arch = load_model(resumed / "checkpoints" / "last.pt")
    assert arch == "resnet18" and torch.equal(model.online.backbone.body.conv1.weight,
                                              legacy["model"]["online.backbone.body.conv1.weight"])
    assert train(_config(resumed, tiny_shards, steps=3, save_every=1, **RUNS[name])).resumed_from == 1
    assert [r["loss"] for r in _records(resumed)] == [r["loss"] for r in _records(full)]


@pytest.mark.slow
def test_export_probe_and_health_rebuild_the_model_from_the_model_config_alone(tiny_shards, tmp_path):
    """Only the run's seed is read besides the model config: with every other run setting gone, export gives
    the same drift table and probe the same model."""
    run = tmp_path / "run"
    train(_config(run, tiny_shards, objective="supervised", levels="all", level_rule="fpn"))
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    config = ModelConfig.from_dict(ckpt["model_config"])
    assert (config.levels, config.level_rule, config.objective) == ("all", "fpn", "supervised")
    assert len(config.classes) == 12 and list(config.classes) == ckpt["config"]["classes"]
    full = export(run, "torchvision", "head", tmp_path / "full.pth").drift_table
    bare = tmp_path / "bare.pt"
    torch.save({**ckpt, "config": {"seed": ckpt["config"]["seed"]}}, bare)
    assert export(bare, "torchvision", "head", tmp_path / "bare.pth").drift_table == full
    model, _ = load_model(bare)  # pooling by size: the box head's weights are the same in either mode
    assert isinstance(model, SupervisedModel) and model.classifier.out_features == 12
    assert model.online.levels == "size" and model.online.level_rule == "fpn"
