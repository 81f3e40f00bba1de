"""The training step and its input: accumulated micro-batches equal one batch, shard views decoded on the
device (and online views' photometrics applied there) train as those decoded in the loader, persistent
loader workers walk a fresh order each epoch, and a compiled backbone gives the same losses."""

import json
import math

import pytest
import torch

from codo_aug import SynthConfig, SynthJob, run_synth
from codo_aug.shards.dataset import ShardDataset
from codo_train import TrainConfig, device_decode, train
from codo_train.batch import collate_for
from codo_train.checkpoint import _with_defaults
from codo_train.data import DataPosition, endless_batches
from codo_train.losses.term import LossTerm
from codo_train.losses.supervised import roi_class_losses
from codo_train.objectives import OBJECTIVES
from codo_train.objectives.base import Objective
from codo_train.optim import make_optimizer, trainable
from codo_train.step import Stepper, term_shares


def _records(shards, n: int) -> list:
    return list(ShardDataset(str(shards), rank=0, world_size=1, shuffle=0))[:n]


def _model(cfg: TrainConfig) -> tuple[torch.nn.Module, Objective]:
    """The run's model (as initialised for seed 0) and objective, as the trainer makes them."""
    torch.manual_seed(0)
    kind = OBJECTIVES[cfg.objective]
    config = kind.model_config(cfg)
    return kind.build(config), kind(cfg, config)


def _one_step(cfg: TrainConfig, micro_batches: list) -> tuple[float, dict, dict]:
    """One step from the same initial weights with BatchNorm on its running statistics (so rows do not mix):
    the step's loss, the parameters after it and the key queues."""
    model, objective = _model(cfg)
    model.eval()
    opt = make_optimizer(cfg, trainable(model))
    stepper = Stepper(cfg, objective, model, model, opt, torch.amp.GradScaler("cpu", enabled=False),
                      torch.device("cpu"))
    result = stepper.step(micro_batches, lr=0.5, momentum=0.9)
    loss = sum(result.terms.values()) / len(result.terms)
    queues = {k: v.clone() for k, v in objective.loss.state_dict().items()}
    return loss.item(), {n: p.detach().clone() for n, p in model.named_parameters()}, queues


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["byol", "infonce"])
def test_two_micro_batches_of_4_step_as_one_batch_of_8(train_shards, loss):
    """Issue 12 point 3: the same loss, the same weights after the step and the same queued keys (in the same
    order), within float tolerance; each term is averaged over all micro-batches' rows, so it holds even
    when the two halves hold different numbers of instances."""
    cfg = TrainConfig(shards="x", out="y", arch="resnet18", batch_size=8, loss=loss, queue_size=64,
                      optimizer="sgd", lr=1.0)
    records = _records(train_shards, 8)
    make = collate_for(cfg.level_rule, cfg.levels, cfg.all_pairs, None)
    whole, halves = [make(records)], [make(records[:4]), make(records[4:])]
    assert len(halves[0].pairs[(0, 1)][0]) != len(halves[1].pairs[(0, 1)][0])  # uneven halves: a real test
    loss8, params8, queue8 = _one_step(cfg, whole)
    loss4x2, params4x2, queue4x2 = _one_step(cfg, halves)
    assert loss4x2 == pytest.approx(loss8, rel=1e-5)
    moved = max((params8[n] - p).abs().max().item() for n, p in params4x2.items())
    assert moved < 1e-5
    if loss == "infonce":
        assert queue8 and all(torch.allclose(queue8[k], queue4x2[k], atol=1e-5) for k in queue8)


def _train_losses(shards, out, **settings) -> list[float]:
    train(TrainConfig(out=str(out), shards=str(shards), steps=2, arch="resnet18", batch_size=4, workers=0,
                      **settings))
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_views_decoded_on_the_device_train_as_those_decoded_in_the_loader(train_shards, tmp_path):
    """decode = 'device' (here the CPU plays the device): the same pixels and draws, so the same losses."""
    cpu = _train_losses(train_shards, tmp_path / "cpu", photometric="soco")
    device = _train_losses(train_shards, tmp_path / "device", photometric="soco", decode="device")
    stored = _train_losses(train_shards, tmp_path / "stored")
    assert device == pytest.approx(cpu, rel=1e-4)
    assert stored[0] != pytest.approx(cpu[0], rel=1e-4)  # fresh photometrics do change what is trained on


@pytest.mark.slow
def test_online_photometrics_on_the_device_train_as_those_applied_in_the_loader(tmp_path, monkeypatch,
                                                                                 caplog):
    """Online, decode = 'device' renders views without their photometrics and applies the same draws on the
    device (the CPU here): the same losses as rendering them in the loader."""
    applied = []
    real = device_decode.apply_photo_tensor
    monkeypatch.setattr(device_decode, "apply_photo_tensor",
                        lambda x, d: applied.append(len(d)) or real(x, d))

    def losses(out, photometric="soco", **settings) -> list[float]:
        train(TrainConfig(out=str(out), instances="sample", backgrounds="sample", steps=1, arch="resnet18",
                          batch_size=4, workers=0, **settings),
              synth=SynthConfig(view_sizes=(128, 128, 64), photometric=photometric))
        return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]

    cpu = losses(tmp_path / "cpu")
    assert not applied and "decode=device on cpu" not in caplog.text
    assert losses(tmp_path / "device", decode="device") == pytest.approx(cpu, rel=1e-4)
    assert applied == [4, 4, 4]  # each view's draws, on the device
    assert caplog.text.count("decode=device on cpu: the training process decodes") == 1  # slower off a GPU
    assert losses(tmp_path / "bare", photometric="none")[0] != pytest.approx(cpu[0], rel=1e-4)  # they matter


def test_persistent_workers_read_every_record_once_per_epoch_in_a_fresh_order(train_shards):
    """Two loader workers kept across epochs (persistent_workers) still get each epoch's number: every
    epoch reads the 48 records once each, and the epochs' orders differ."""
    position = DataPosition()
    stream = endless_batches(ShardDataset(str(train_shards), rank=0, world_size=1, shuffle=8, seed=3), 4, 2,
                             position, collate_fn=collate_for("soco", "size", False, None))
    epochs: dict[int, list[str]] = {}
    for _ in range(3 * 12):
        batch = next(stream)  # the position is moved past a batch before it is given out
        epochs.setdefault(position.epoch, []).extend(batch.keys)
    assert sorted(epochs) == [0, 1, 2]
    assert all(sorted(keys) == sorted(epochs[0]) and len(keys) == 48 for keys in epochs.values())
    assert len({tuple(keys) for keys in epochs.values()}) == 3


@pytest.mark.slow
def test_a_compiled_backbone_gives_the_same_losses(tmp_path):
    """--compile (torch.compile of each encoder's backbone and FPN, inductor on the CPU) trains to the
    eager run's losses within tolerance, and its checkpoint keeps the eager parameter names. The views are
    all 96 px: one input shape, so inductor compiles each encoder once (half the time of two sizes)."""
    shards = tmp_path / "shards"
    run_synth(SynthJob(out=shards, num_samples=8, shard_size=8, seed=0,
                       config=SynthConfig(view_sizes=(96, 96, 96))))
    eager = _train_losses(shards, tmp_path / "eager")
    compiled = _train_losses(shards, tmp_path / "compiled", compile=True)
    assert compiled == pytest.approx(eager, rel=1e-3)
    state = torch.load(tmp_path / "compiled" / "checkpoints" / "last.pt", map_location="cpu",
                       weights_only=False)["model"]
    assert not any("_orig_mod" in k for k in state) and "online.backbone.body.conv1.weight" in state


def test_a_micro_batch_without_matched_instances_leaves_its_terms_to_the_others(train_shards):
    """With an image-level term every micro-batch has a loss even where no instance matched across views:
    the instance terms of the step then come from the other micro-batch alone (its share 1), the image
    terms from both (1/2 each), and a supervised view without RoIs has no term (not a NaN)."""
    cfg = TrainConfig(shards="x", out="y", arch="resnet18", batch_size=2, image_weight=0.5, optimizer="sgd")
    make = collate_for(cfg.level_rule, cfg.levels, cfg.all_pairs, None)
    records = _records(train_shards, 4)
    first, second = make(records[:2]), make(records[2:])
    first.pairs = {k: (a[:0], b[:0]) for k, (a, b) in first.pairs.items()}  # no instance matched
    shares = term_shares(_model(cfg)[1].step_terms(first), [first, second])
    assert shares[LossTerm("size", (0, 1))] == [0.0, 1.0] and shares[LossTerm("image", (0, 1))] == [0.5, 0.5]
    loss, params, _ = _one_step(cfg, [first, second])
    assert math.isfinite(loss) and all(torch.isfinite(p).all() for p in params.values())
    logits = [{"size": torch.zeros(0, 3)}, {"size": torch.zeros(2, 3)}]
    labels = [torch.zeros(0, dtype=torch.int64), torch.tensor([0, 2])]
    assert list(roi_class_losses(logits, labels)) == [LossTerm("size", (1,))]


def test_runs_saved_before_level_rule_keep_fpn_when_resumed_or_rebuilt():
    assert TrainConfig.from_run({"arch": "resnet18"}).level_rule == "fpn"
    assert _with_defaults({"arch": "resnet18"})["level_rule"] == "fpn"  # what the "same run?" check compares
