"""Optimizers: LARS against hand-computed updates, parameter groups, lr scaling, the automatic momentum base,
the warning for a LARS run too gentle to move its weights, and the run options that use them."""

import json
import logging
import math
import tomllib

import pytest
import torch
from torch import nn

import codo_train.objectives.base as objective_mod
import codo_train.trainer as trainer_mod
from codo_aug import InputError, RunError, SynthConfig
from codo_cli.config_files import read_settings
from codo_train.checkpoint import prepare_run
from codo_train.config import TrainConfig
from codo_train.momentum import momentum_at
from codo_train.optim import LARS, lars_reach, make_optimizer, param_groups, warn_if_still
from codo_train.schedules import auto_momentum_base, scale_lr

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
    expected = 3.995 - (0.9 * 0.005 + 0.001 * math.hypot(3, 3.995) / 0.5 * 0.5)
    assert w[1].item() == pytest.approx(expected, abs=1e-6)


def test_lars_updates_many_tensors_at_once_as_it_would_one_by_one():
    """The multi-tensor step against the rule applied tensor by tensor: decay, trust ratio (1 where a
    norm is 0), momentum; three steps over a matrix, a vector and a tensor moved by its decay alone."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (5,), (2, 2)]
    params = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    ref = [p.detach().clone() for p in params]
    bufs = [torch.zeros_like(p) for p in ref]
    opt = LARS([{"params": params, "weight_decay": 0.01, "lars": True}], lr=0.5, momentum=0.9, eta=0.02)
    for _ in range(3):
        grads = [torch.randn(s, generator=gen) for s in shapes[:2]] + [torch.zeros(shapes[2])]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        for k, (w, g) in enumerate(zip(ref, grads)):
            d = g + 0.01 * w
            trust = 0.02 * w.norm() / d.norm() if d.norm() > 0 and w.norm() > 0 else 1.0
            bufs[k] = 0.9 * bufs[k] + trust * d
            ref[k] = w - 0.5 * bufs[k]
    for p, r in zip(params, ref):
        assert torch.allclose(p.detach(), r, atol=1e-6)


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
    # conv bias, BN weight + bias, fc bias
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4
    for name in ("sgd", "lars", "adamw"):
        cfg = TrainConfig(shards="x", out="y", optimizer=name, lr=1.0, batch_size=32, accumulate=2,
                          lr_scaling="linear")
        opt = make_optimizer(cfg, list(model.named_parameters()))
        assert opt.param_groups[0]["lr"] == pytest.approx(0.25)  # 1.0 x 64 / 256


def test_lr_scaling_rules_linear_sqrt_and_auto():
    assert scale_lr(1.0, 8, "linear") == pytest.approx(1 / 32)
    assert scale_lr(1.0, 8, "sqrt") == pytest.approx(math.sqrt(1 / 32))
    assert scale_lr(1.0, 8, "auto") == pytest.approx(math.sqrt(1 / 32))  # below 256: square root
    assert scale_lr(1.0, 2048, "auto") == pytest.approx(8.0)  # SoCo's batch: linear
    assert scale_lr(1.0, 2048, "sqrt") == pytest.approx(math.sqrt(8))
    cfg = TrainConfig(shards="x", out="y", lr=2.0, batch_size=8, accumulate=2, lr_scaling="sqrt")  # 2 x 1/4
    assert cfg.scaled_lr == pytest.approx(0.5) and cfg.to_dict()["scaled_lr"] == pytest.approx(0.5)


def test_auto_momentum_base_leaves_at_most_5_percent_of_the_initial_target():
    def kept(base, steps):
        return math.prod(momentum_at(k, steps, base) for k in range(steps))

    assert auto_momentum_base(60) == pytest.approx(1 - 2 * math.log(20) / 61)  # 0.9018
    assert auto_momentum_base(300) == pytest.approx(0.98009, abs=1e-5)
    assert auto_momentum_base(20) == 0.9 and auto_momentum_base(10_000) == 0.996  # clamped
    for steps in (60, 120, 300, 1000):
        assert 0.04 < kept(auto_momentum_base(steps), steps) <= 0.05
    assert kept(0.99, 120) == pytest.approx(0.545, abs=1e-3)  # the fixed 0.99 of before: half random
    assert TrainConfig(shards="x", out="y", steps=60).momentum_start == pytest.approx(0.9018, abs=1e-4)
    old = TrainConfig.from_dict({"shards": "x", "out": "y", "momentum_base": 0.99})  # old configs load
    assert old.momentum_start == 0.99
    for bad, message in (("fast", 'must be in \\[0, 1\\), or "auto"'), (1, "must be in"),
                         (True, "must be a number or a string")):
        with pytest.raises(InputError, match=message):
            TrainConfig.from_dict({"shards": "x", "out": "y", "momentum_base": bad})


def test_lars_too_gentle_to_move_the_weights_is_reported_once_at_the_start(caplog):
    tiny = dict(shards="x", out="y", optimizer="lars", lr=1.0, batch_size=8, steps=60)
    # sum of the 60 rates (warm-up 10, cosine) = 31 x lr; x trust 1e-3 / (1 - 0.9)
    assert lars_reach(TrainConfig(**tiny, lr_scaling="linear")) == pytest.approx(0.0097, abs=1e-4)
    assert lars_reach(TrainConfig(**tiny, lr_scaling="sqrt")) == pytest.approx(0.0548, abs=1e-4)
    with caplog.at_level(logging.WARNING, logger="codo_train.optim"):
        warn_if_still(TrainConfig(**tiny, lr_scaling="linear"))
        assert len(caplog.records) == 1
        assert ("LARS at lr 0.0312 (lr 1 scaled linear to a batch of 8) can move no weight by more than "
                "0.0097 of its norm in 60 steps") in caplog.text
        assert caplog.text.rstrip().endswith('raise lr or steps, or lr_scaling = "auto" (square root below a '
                                             'batch of 256)')
        warn_if_still(TrainConfig(**tiny, lr_scaling="auto"))
        warn_if_still(TrainConfig(**{**tiny, "optimizer": "sgd"}, lr_scaling="linear"))
        assert len(caplog.records) == 1
        warn_if_still(TrainConfig(**{**tiny, "steps": 10}))  # auto, but 10 steps: 0.0097 again
        assert len(caplog.records) == 2 and caplog.text.rstrip().endswith("raise lr or steps")


def test_a_checkpoint_from_before_new_settings_resumes_as_if_it_had_their_defaults(tmp_path):
    """... except level_rule, whose default changed: runs saved before it used 'fpn', and resume with it."""
    run_config = {**TrainConfig(shards="x", out=str(tmp_path), level_rule="fpn").to_dict(),
                  "synth": SynthConfig().to_dict()}
    new_keys = ("lr_scaling", "health_every", "tensorboard", "level_rule")
    older = {k: v for k, v in run_config.items() if k not in new_keys}
    older["synth"] = {k: v for k, v in run_config["synth"].items() if k != "view_sizes"}
    (tmp_path / "checkpoints").mkdir()
    torch.save({"model": {}, "config": older}, tmp_path / "checkpoints" / "last.pt")
    (tmp_path / "config.json").write_text(json.dumps(run_config, default=list))
    assert prepare_run(tmp_path, False, run_config, run_config)["config"] is not None
    logging_only = {**run_config, "health_every": 5, "tensorboard": True}  # change nothing the run computes
    assert prepare_run(tmp_path, False, logging_only, logging_only)
    other = {**run_config, "lr_scaling": "sqrt"}
    with pytest.raises(InputError, match=r"differs in: lr_scaling\)"):
        prepare_run(tmp_path, False, other, other)
    today = {**run_config, "level_rule": "soco"}  # today's default would change what the old run computes
    with pytest.raises(InputError, match=r"differs in: level_rule\)"):
        prepare_run(tmp_path, False, today, today)


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
def test_run_with_lars_bf16_channels_last_accumulation_and_all_levels(train_shards, tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[train]\narch = "resnet18"\nbatch_size = 2\nsteps = 2\n')
    cli("codo-train", "run", "--config", str(conf), "--shards", str(train_shards),
        "--out", str(tmp_path / "r"),
        "--set", "optimizer=lars", "--set", "accumulate=2", "--amp", "bf16", "--channels-last",
        "--set", "levels=all", "--set", "level_weights=[1, 1, 2, 2]", check=True)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    chosen = (config["optimizer"], config["accumulate"], config["amp"], config["channels_last"])
    assert chosen == ("lars", 2, "bf16", True)
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(math.isfinite(r["loss"]) for r in rows)
    assert {"p2/0-1", "p5/0-2"} <= rows[0]["pairs"].keys()  # one loss per level and view pair


@pytest.mark.slow
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(train_shards, tmp_path,
                                                                            monkeypatch):
    real = objective_mod.pair_losses
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        losses = real(*args)
        return {k: v * math.nan for k, v in losses.items()} if calls["n"] == 3 else losses

    monkeypatch.setattr(objective_mod, "pair_losses", poisoned)
    cfg = TrainConfig(shards=str(train_shards), out=str(tmp_path / "r"), steps=5, arch="resnet18",
                      batch_size=2,
                      save_every=2)
    stopped = r"step 3: loss is nan; stopped, the last good checkpoint is .*last.pt"
    with pytest.raises(RunError, match=stopped):
        trainer_mod.train(cfg)
    assert torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=False)["step"] == 2


@pytest.mark.slow
def test_online_training_from_sources_with_synth_settings_from_the_same_file(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[train]\narch = "resnet18"\nbatch_size = 2\nsteps = 2\n\n'
                    '[synth]\nview_sizes = [128, 96]\nscale = [0.3, 1.6]\n')
    cli("codo-train", "run", "--config", str(conf), "--instances", "sample", "--backgrounds", "sample",
        "--out", str(tmp_path / "r"), "--workers", "2", "--set", "synth.scale=[0.4, 0.9]", "--set", "seed=2",
        check=True)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["instances"] == "sample" and config["synth"]["view_sizes"] == [128, 96]
    assert config["synth"]["scale"] == [0.4, 0.9] and config["seed"] == 2  # --set over the file, both tables
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 2
    bad = cli("codo-train", "run", "--out", str(tmp_path / "x"), "--instances", "sample")
    assert bad.returncode == 2 and "online synthesis needs --backgrounds too" in bad.stderr


def test_set_keys_name_their_section_or_the_commands_own():
    sets = ["steps=5", "synth.scale=[0.2, 0.6]", "train.seed=3"]  # as codo-train run reads them
    both = ("synth", "train")
    assert read_settings(None, sets, "train", reads=both) == {"steps": 5, "seed": 3}
    assert read_settings(None, sets, "synth", top_level=False, main="train", reads=both) == {
        "scale": [0.2, 0.6]}
    assert read_settings(None, ["scale=[0.2, 0.6]", "synth.seed=1"], "synth") == {"scale": [0.2, 0.6],
                                                                                 "seed": 1}  # codo-aug's
    refused = (("foo.x", "train", both), ("synth.", "train", both), ("train.steps", "synth", ()))
    for key, table, reads in refused:
        with pytest.raises(InputError, match=f"--set {key}: a prefix names a section this command reads: "
                                             f"{', '.join(reads or (table,))}"):
            read_settings(None, [f"{key}=1"], table, reads=reads)
