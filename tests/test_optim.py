"""Optimizers: LARS against hand-computed updates, parameter groups, and the run options that use them."""

import json
import math
import tomllib

import pytest
import torch
from torch import nn

import codo_train.trainer as trainer_mod
from codo_aug import InputError, RunError
from codo_train.config import TrainConfig
from codo_train.optim import LARS, make_optimizer, param_groups

from .helpers import cli


def test_lars_scales_each_update_by_the_trust_ratio():
    w = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||w|| = 5
    w.grad = torch.tensor([0.0, 0.5])  # ||g + wd w|| with wd 0 = 0.5
    opt = LARS([{"params": [w], "weight_decay": 0.0, "lars": True}], lr=1.0, momentum=0.9, eta=0.001)
    opt.step()
    # trust = 0.001 * 5 / 0.5 = 0.01; update = lr * trust * g = [0, 0.005]
    assert w.tolist() == pytest.approx([3.0, 3.995])
    w.grad = torch.tensor([0.0, 0.5])
    opt.step()  # momentum: buf = 0.9 * 0.005 + trust' * 0.5 with ||w|| barely changed
    assert w[1].item() == pytest.approx(3.995 - (0.9 * 0.005 + 0.001 * math.hypot(3, 3.995) / 0.5 * 0.5), abs=1e-6)


def test_lars_leaves_flagged_groups_unadapted_and_undecayed():
    b = nn.Parameter(torch.tensor([1.0]))
    b.grad = torch.tensor([0.5])
    LARS([{"params": [b], "weight_decay": 0.0, "lars": False}], lr=0.1, momentum=0.0).step()
    assert b.item() == pytest.approx(1.0 - 0.1 * 0.5)


def test_bn_and_biases_get_no_weight_decay():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    groups = param_groups(list(model.named_parameters()), 1e-5)
    decayed = {id(p) for p in groups[0]["params"]}
    assert decayed == {id(model[0].weight), id(model[2].weight)}
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4  # conv bias, BN weight+bias, fc bias
    for name in ("sgd", "lars", "adamw"):
        cfg = TrainConfig(shards="x", out="y", optimizer=name, lr=1.0, batch_size=32, accumulate=2)
        opt = make_optimizer(cfg, list(model.named_parameters()))
        assert opt.param_groups[0]["lr"] == pytest.approx(0.25)  # 1.0 x 64 / 256


def test_train_settings_from_toml_and_set(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[train]\nsteps = 5\narch = "resnet18"\noptimizer = "lars"\n')
    cfg = TrainConfig.from_dict({**tomllib.loads(conf.read_text())["train"], "shards": "s", "out": "o"})
    assert (cfg.steps, cfg.arch, cfg.optimizer) == (5, "resnet18", "lars")
    with pytest.raises(InputError, match="invalid amp='fp16': must be bf16 or none on the CPU"):
        TrainConfig(shards="s", out="o", amp="fp16")
    with pytest.raises(InputError, match="unknown setting"):
        TrainConfig.from_dict({"shards": "s", "out": "o", "lr_max": 3})


@pytest.mark.slow
def test_run_with_lars_bf16_channels_last_accumulation_and_all_levels(sample_shards, tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[train]\narch = "resnet18"\nbatch_size = 2\nsteps = 2\n')
    cli("codo-train", "run", "--config", str(conf), "--shards", str(sample_shards), "--out", str(tmp_path / "r"),
        "--set", "optimizer=lars", "--set", "accumulate=2", "--amp", "bf16", "--channels-last",
        "--set", "levels=all", "--set", "level_weights=[1, 1, 2, 2]", check=True)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["optimizer"], config["accumulate"], config["amp"], config["channels_last"]) == ("lars", 2, "bf16", True)
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert {"p2/0-1", "p5/0-2"} <= rows[0]["pairs"].keys()  # one loss per level and view pair


@pytest.mark.slow
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(sample_shards, tmp_path, monkeypatch):
    real = trainer_mod.pair_losses
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        losses = real(*args)
        return {k: v * math.nan for k, v in losses.items()} if calls["n"] == 3 else losses

    monkeypatch.setattr(trainer_mod, "pair_losses", poisoned)
    cfg = TrainConfig(shards=str(sample_shards), out=str(tmp_path / "r"), steps=5, arch="resnet18", batch_size=2,
                      save_every=2)
    with pytest.raises(RunError, match=r"step 3: loss is nan; stopped, the last good checkpoint is .*last.pt"):
        trainer_mod.train(cfg)
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)["step"] == 2


@pytest.mark.slow
def test_online_training_from_sources_with_synth_settings_from_the_same_file(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[train]\narch = "resnet18"\nbatch_size = 2\nsteps = 2\n\n[synth]\nview_sizes = [128, 96]\n')
    cli("codo-train", "run", "--config", str(conf), "--instances", "sample", "--backgrounds", "sample",
        "--out", str(tmp_path / "r"), "--workers", "2", check=True)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["instances"] == "sample" and config["synth"]["view_sizes"] == [128, 96]
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    bad = cli("codo-train", "run", "--out", str(tmp_path / "x"), "--instances", "sample")
    assert bad.returncode == 2 and "must be both given for online synthesis" in bad.stderr
