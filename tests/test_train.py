"""Trainer pieces against hand-computed values, alignment with torchvision, and a short real run."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn_v2
from torchvision.ops import roi_align

from codo_aug import InputError, View
from codo_aug.dataset import collate
from codo_train import TrainConfig
from codo_train.losses.byol import byol_loss
from codo_train.models.encoder import Encoder
from codo_train.momentum import momentum_at, update_momentum
from codo_train.models.levels import assign_levels, pool_levels
from codo_train.losses.infonce import TargetQueue, infonce_loss
from codo_train.losses.term import LossTerm, named
from codo_train.losses.terms import level_losses, level_means, pair_losses, total_loss
from codo_train.models.config import ModelConfig
from codo_train.objectives import build_model
from codo_train.pairs import match_instances, pair_rows, view_pairs
from codo_train.schedules import lr_at
from codo_train.trainer import train

from .helpers import cli


def test_byol_loss_is_two_minus_two_cosine():
    p = torch.tensor([[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0]])
    # per row: 0, 2, 4, 2 - 2/sqrt(2)
    expected = (0 + 2 + 4 + (2 - math.sqrt(2))) / 4
    assert byol_loss(p, z).item() == pytest.approx(expected, abs=1e-6)


def test_pairs_match_same_image_and_id_only():
    img_a, id_a = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])
    img_b, id_b = torch.tensor([0, 1, 1]), torch.tensor([1, 0, 2])
    ia, ib = match_instances(img_a, id_a, img_b, id_b)
    assert ia.tolist() == [1, 2] and ib.tolist() == [0, 1]


def test_pair_losses_cover_view0_against_each_other_view_symmetrically():
    # three views of one image; instance 1 is missing from view 2, so only instance 0 pairs there
    img = [torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long),
           torch.zeros(1, dtype=torch.long)]
    ids = [torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0])]
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    preds = [{"size": torch.stack([e0, e1])}, {"size": torch.stack([e1, e0])}, {"size": torch.stack([e0])}]
    targets = [{"size": torch.stack([e0, e1])}, {"size": torch.stack([e1, e1])}, {"size": torch.stack([-e0])}]
    losses = named(pair_losses(preds, targets, img, ids))
    assert sorted(losses) == ["0-1", "0-2"]
    # 0-1: p0 vs t1 matched (id0: e0 vs e1 -> 2, id1: e1 vs e1 -> 0) mean 1;
    # p1 vs t0 (id0: e0.e0 -> 0, id1: e1.e1 -> 0)
    assert losses["0-1"].item() == pytest.approx(1.0)
    # 0-2: id0 only: p0 e0 vs t2 -e0 -> 4; p2 e0 vs t0 e0 -> 0
    assert losses["0-2"].item() == pytest.approx(4.0)


def test_all_levels_give_one_loss_per_level_weighted_in_the_total():
    img = [torch.zeros(1, dtype=torch.long)] * 2
    ids = [torch.tensor([0])] * 2
    e0, e1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    preds = [{"p2": e0, "p3": e0}, {"p2": e0, "p3": e0}]
    targets = [{"p2": e0, "p3": e1}, {"p2": e0, "p3": e1}]
    losses = pair_losses(preds, targets, img, ids)
    assert {k: v.item() for k, v in losses.items()} == {LossTerm("p2", (0, 1)): 0.0,
                                                        LossTerm("p3", (0, 1)): 4.0}
    assert sorted(named(losses)) == ["p2/0-1", "p3/0-1"]
    assert total_loss(losses, {"p2": 1.0, "p3": 1.0}).item() == pytest.approx(2.0)
    assert total_loss(losses, {"p2": 3.0, "p3": 1.0}).item() == pytest.approx(1.0)


def test_level_assignment_follows_the_fpn_rule_scaled_to_the_largest_view():
    boxes = torch.tensor([[0, 0, 224, 224], [0, 0, 112, 112], [0, 0, 111, 111], [0, 0, 448, 448],
                          [0, 0, 10, 10], [0, 0, 56, 56], [0, 0, 200, 50]], dtype=torch.float32)
    # sqrt(wh): 224 -> P4, 112 -> P3, 111 -> P2 (floor(4 + log2(111/224)) = 2), 448 -> P5, tiny -> P2,
    # 56 -> P2, 200x50 (side 100) -> P2
    assert assign_levels(boxes).tolist() == [4, 3, 2, 5, 2, 2, 2]
    # the same boxes with a 448-px largest view sit one level lower
    assert assign_levels(boxes, reference=448.0).tolist() == [3, 2, 2, 4, 2, 2, 2]


def test_size_mode_pools_each_roi_from_its_own_level():
    features = {str(i): torch.randn(1, 8, 64 // 2 ** i, 64 // 2 ** i) for i in range(4)}  # a 256-px image
    rois = [torch.tensor([[0.0, 0.0, 224.0, 224.0], [10.0, 10.0, 40.0, 40.0]])]
    out = pool_levels(features, rois, 256, "size", 224.0)["size"]
    expect_p4 = roi_align(features["2"], rois, 7, spatial_scale=16 / 256, sampling_ratio=2, aligned=True)[0]
    expect_p2 = roi_align(features["0"], rois, 7, spatial_scale=64 / 256, sampling_ratio=2, aligned=True)[1]
    assert torch.allclose(out[0], expect_p4) and torch.allclose(out[1], expect_p2)
    assert set(pool_levels(features, rois, 256, "all", 224.0)) == {"p2", "p3", "p4", "p5"}


def test_momentum_and_lr_schedules():
    assert momentum_at(0, 100) == pytest.approx(0.99)
    assert momentum_at(50, 100) == pytest.approx(0.995)
    assert momentum_at(100, 100) == pytest.approx(1.0)
    assert lr_at(0, 100, 0.4, 4) == pytest.approx(0.1)
    assert lr_at(3, 100, 0.4, 4) == pytest.approx(0.4)
    assert lr_at(4, 100, 0.4, 4) == pytest.approx(0.4)
    assert lr_at(52, 100, 0.4, 4) == pytest.approx(0.2)


def test_update_momentum_blends_parameters_and_copies_buffers():
    online, target = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        online.weight.fill_(1.0)
        target.weight.fill_(3.0)
        online.running_mean.fill_(5.0)
    update_momentum(online, target, 0.75)
    assert target.weight.tolist() == [2.5, 2.5]
    assert target.running_mean.tolist() == [5.0, 5.0]


def test_collate_keeps_each_images_rois_and_ids():
    def sample(n):
        view = View(np.zeros((8, 8, 3), np.uint8), np.ones((n, 4), np.float32), np.ones((n, 4), np.float32),
                    np.arange(n, dtype=np.int64))
        return SimpleNamespace(views=[view, view])

    batch = collate([sample(2), sample(1)])
    assert batch.views[0].shape == (2, 3, 8, 8) and batch.views[0].dtype == torch.uint8
    assert [len(r) for r in batch.rois[1]] == [2, 1]
    assert batch.img[0].tolist() == [0, 0, 1] and batch.ids[0].tolist() == [0, 1, 0]


def test_encoder_names_and_shapes_match_torchvision_mask_rcnn_v2():
    ours = {k: v.shape for k, v in Encoder("resnet50", proj_hidden=64, proj_dim=16).state_dict().items()}
    theirs = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict()
    expected = {k: v.shape for k, v in theirs.items() if k.startswith(("backbone.", "roi_heads.box_head."))}
    mapped = {("roi_heads." + k if k.startswith("box_head.") else k): s for k, s in ours.items()
              if k.startswith(("backbone.", "box_head."))}
    assert mapped == expected


def test_config_rejects_bad_values():
    with pytest.raises(InputError, match="invalid batch_size=0"):
        TrainConfig(shards="x", out="y", batch_size=0)
    linear = TrainConfig(shards="x", out="y", lr=0.4, batch_size=64, lr_scaling="linear")
    assert linear.scaled_lr == pytest.approx(0.1)
    assert TrainConfig(instances="sample", backgrounds="sample", out="y", decode="device").decode == "device"
    with pytest.raises(InputError, match="invalid decode='gpu': must be one of cpu, device"):
        TrainConfig(shards="x", out="y", decode="gpu")


@pytest.mark.slow
def test_short_run_learns_and_writes_its_run_folder(train_shards, tmp_path):
    run = tmp_path / "run"
    # 30 steps: on the 128-px shards a 60-step run's loss falls from 3.8 (steps 1-10) to 2.6 (11-20)
    cli("codo-train", "run", "--shards", str(train_shards / "*.tar"), "--steps", "30", "--arch", "resnet18",
        "--device", "cpu", "--batch-size", "4", "--out", str(run), "--seed", "0", "--save-every", "15",
        check=True)
    config = json.loads((run / "config.json").read_text())
    assert config["steps"] == 30 and config["arch"] == "resnet18" and len(config["shard_files"]) == 3
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == list(range(1, 31))
    assert all({"loss", "lr"} <= m.keys() for m in lines)
    first, last = [m["loss"] for m in lines[:10]], [m["loss"] for m in lines[-10:]]
    assert sum(last) / 10 < sum(first) / 10
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["step"] == 30
    assert any(k.startswith("online.backbone.body.") for k in ckpt["model"])
    assert not list((run / "checkpoints").glob(".*.tmp"))
    again = cli("codo-train", "run", "--shards", str(train_shards), "--steps", "1", "--out", str(run))
    assert again.returncode == 2 and "holds a different run (differs in: " in again.stderr
    cli("codo-train", "run", "--shards", str(train_shards), "--steps", "1", "--arch", "resnet18",
        "--batch-size", "2", "--out", str(run), "--overwrite", check=True)
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_image_objective_trains_the_backbone_on_whole_views_only(train_shards, tmp_path):
    run = tmp_path / "image"
    cli("codo-train", "run", "--shards", str(train_shards), "--objective", "image", "--steps", "3", "--arch",
        "resnet18", "--batch-size", "4", "--lr", "5", "--out", str(run), check=True)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert ([sorted(m["pairs"]) for m in lines] == [["image/0-1", "image/0-2"]] * 3
            and lines[0]["levels"] == {})
    assert all(math.isfinite(m["loss"]) and 0 <= m["loss"] <= 4 for m in lines)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    state = ckpt["model"]
    assert ckpt["model_config"] == ModelConfig("resnet18", "image", image_level=True).to_dict()
    torch.manual_seed(0)  # the trainer's initialisation for seed 0
    init = build_model(ModelConfig.from_dict(ckpt["model_config"])).state_dict()
    assert state.keys() == init.keys() and not any(k.startswith("queues.") for k in state)
    moved = {k for k in state if k.startswith("online.") and not torch.equal(state[k], init[k])}
    assert any(k.startswith("online.backbone.body.") for k in moved)
    assert any(k.startswith("online.image_projector.") for k in moved)
    # no RoI was pooled
    assert not any(k.startswith(("online.box_head.", "online.projector.")) for k in moved)
    assert TrainConfig(shards="x", out="y", objective="image").objective == "image"
    with pytest.raises(InputError, match="invalid objective='boxes'"):
        TrainConfig(shards="x", out="y", objective="boxes")


def test_infonce_against_hand_values_and_the_queue_ring():
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # logits / T=1: positive 1, negatives 0 and 1 -> -log(e / (e + 1 + e))
    assert infonce_loss(q, k, queue, 1.0).item() == pytest.approx(-math.log(math.e / (2 * math.e + 1)))
    # T = 0.2 sharpens: positive 5, negatives 0 and 5
    assert infonce_loss(q, k, queue, 0.2).item() == pytest.approx(
        -math.log(math.exp(5) / (2 * math.exp(5) + 1)))
    ring = TargetQueue(3, 2)
    ring.push(torch.tensor([[3.0, 0.0], [0.0, 2.0]]))
    ring.push(torch.tensor([[1.0, 1.0], [0.0, -1.0]]))
    assert ring.ptr.item() == 1
    assert torch.allclose(ring.targets, torch.tensor([[0.0, -1.0], [0.0, 1.0], [0.7071068, 0.7071068]]))


def test_all_pairs_and_the_image_level_branch():
    assert view_pairs(3) == [(0, 1), (0, 2)] and view_pairs(3, all_pairs=True) == [(0, 1), (0, 2), (1, 2)]
    e0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    views = [{"size": e0[:1], "image": e0}] * 3
    img, ids = [torch.tensor([0])] * 3, [torch.tensor([0])] * 3
    losses = named(pair_losses(views, views, img, ids, all_pairs=True))
    assert sorted(losses) == ["0-1", "0-2", "1-2", "image/0-1", "image/0-2", "image/1-2"]
    assert all(v.item() == pytest.approx(0.0) for v in losses.values())


def test_level_losses_group_matched_rows_by_the_query_roi_level():
    e0, e1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # one image, instances 0 and 1 in both views; view 0 pools them at P2 and P4, view 1 at P2 and P3
    preds = [{"size": torch.stack([e0, e0])}, {"size": torch.stack([e0, e1])}]
    targets = [{"size": torch.stack([e0, e1])}, {"size": torch.stack([e0, e0])}]
    img, ids = [torch.zeros(2, dtype=torch.long)] * 2, [torch.tensor([0, 1])] * 2
    levels = [torch.tensor([2, 4]), torch.tensor([2, 3])]
    pairs = pair_rows(img, ids)
    by_level = level_means(*level_losses(preds, targets, pairs, levels))
    # 0->1: id0 e0.e0 -> 0 (P2), id1 e0 vs e0 -> 0 (P4); 1->0: id0 e0.e0 -> 0 (P2), id1 e1 vs e1 -> 0 (P3)
    assert by_level == {"p2": 0.0, "p3": 0.0, "p4": 0.0}
    targets[1]["size"] = torch.stack([-e0, e1])  # now view 0's queries meet opposite / orthogonal keys
    sums, counts = level_losses(preds, targets, pairs, levels)
    assert counts.tolist() == [2, 1, 1, 0]  # rows by their query's level: P2 twice, P3 and P4 once
    by_level = level_means(sums, counts)
    assert by_level["p2"] == pytest.approx((4.0 + 0.0) / 2) and by_level["p4"] == pytest.approx(2.0)


def test_supervised_objective_on_shards_without_a_class_list_is_one_line(train_shards, tmp_path):
    shards = tmp_path / "old"
    shards.mkdir()
    for tar in train_shards.glob("*.tar"):
        (shards / tar.name).symlink_to(tar)
    info = json.loads((train_shards / "_info.json").read_text())
    del info["sources"]["instances"]["labels"]  # as codo-aug wrote it before the class list
    (shards / "_info.json").write_text(json.dumps(info))
    proc = cli("codo-train", "run", "--shards", str(shards), "--objective", "supervised", "--steps", "1",
               "--arch", "resnet18", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("codo-train: error: objective 'supervised' classifies RoIs by their "
                                  f"instance class, and {shards / '_info.json'} lists none")
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_supervised_objective_on_instances_of_one_class_is_one_line(tmp_path):
    from PIL import Image

    folder = tmp_path / "unsorted"  # images straight under the root: one class, ''
    folder.mkdir()
    for k in range(2):
        Image.new("RGB", (96, 80), (40 * k, 120, 200)).save(folder / f"{k}.png")
    proc = cli("codo-train", "run", "--instances", f"folder:{folder}", "--backgrounds", "sample",
               "--objective", "supervised", "--steps", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "and the instance source has 1 (''): give instances of 2 or more classes" in proc.stderr


@pytest.mark.slow
def test_accumulated_micro_batches_all_feed_the_infonce_queue(train_shards, tmp_path):
    """2 micro-batches of 4 push the keys of all 8 samples, as one batch of 8 does (the last micro-batch's
    alone were queued before)."""
    pushed = {}
    for batch, accumulate in ((8, 1), (4, 2)):
        out = tmp_path / f"b{batch}x{accumulate}"
        train(TrainConfig(out=str(out), shards=str(train_shards), steps=1, arch="resnet18", loss="infonce",
                          batch_size=batch, accumulate=accumulate, queue_size=4096, workers=0))
        state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["loss"]
        pushed[accumulate] = {k: int(v) for k, v in state.items()
                              if k.startswith("queues.") and k.endswith("ptr")}
    assert pushed[1] and pushed[2] == pushed[1]
    assert all(n >= 8 * 2 for n in pushed[1].values())  # every view of every sample holds a box


SYNCS = ("aten::item", "aten::_local_scalar_dense", "aten::nonzero")


@pytest.mark.slow
def test_training_steps_never_wait_for_the_device(train_shards, tmp_path):
    """Profiled on the CPU, one DataLoader worker: inside each step (the trainer's `codo.step` range) no
    .item(), no _local_scalar_dense, no nonzero(): pairs, levels and per-level rows come with the batch
    from the worker, and the figures stay on the device until a logging step fetches them."""
    cfg = TrainConfig(out=str(tmp_path / "r"), shards=str(train_shards), steps=3, arch="resnet18",
                      batch_size=2, workers=1, log_every=3, health_every=100)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_stack=True) as prof:
        train(cfg)
    events = prof.events()
    steps = [e.time_range for e in events if e.name == "codo.step"]
    assert len(steps) == 3

    def epoch_start(e) -> bool:
        """The DataLoader draws its workers' base seed from a CPU tensor when an epoch's iterator starts."""
        while e is not None:
            if "torch/utils/data/dataloader.py" in e.name:
                return True
            e = e.cpu_parent
        return False

    inside = [e.name for e in events if e.name in SYNCS and not epoch_start(e)
              and any(r.start <= e.time_range.start <= r.end for r in steps)]
    assert inside == []
    assert any(e.name in SYNCS for e in events)  # the fetch on step 3 and the setup do synchronise
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3]  # every step still has its line
