"""The supervised positive control: class labels through the batch, the classes a run knows, the RoI
classifier, and its weights through export and fine-tuning."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from codo_aug import InputError, View
from codo_aug.config import SynthConfig
from codo_aug.dataset import CoDoDataset, collate
from codo_aug.shards.dataset import ShardDataset
from codo_train import TrainConfig
from codo_train.classes import instance_classes
from codo_train.export.names import torchvision_weights
from codo_train.losses.supervised import roi_class_losses
from codo_train.losses.term import LossTerm
from codo_train.losses.terms import total_loss
from codo_train.models.codo import CoDoModel
from codo_train.models.supervised import SupervisedModel
from codo_train.objectives import build_model
from codo_train.objectives.supervised import Supervised

from .helpers import cli


def view(ids):
    n = len(ids)
    return View(np.zeros((8, 8, 3), np.uint8), np.ones((n, 4), np.float32), np.ones((n, 4), np.float32),
                np.asarray(ids, dtype=np.int64))


def test_collate_gives_each_roi_its_class_index_for_samples_and_shard_records():
    online = SimpleNamespace(index=7, labels=["cat", "dog", "cat"], views=[view([0, 1, 2]), view([2, 1])])
    record = SimpleNamespace(key="000000003", meta={"labels": ["emu"]}, views=[view([0]), view([0])])
    batch = collate([online, record], classes=["cat", "dog", "emu"])
    assert [t.tolist() for t in batch.labels] == [[0, 1, 0, 2], [0, 1, 2]]  # RoI order: img, then ids
    assert batch.img[1].tolist() == [0, 0, 1] and batch.ids[1].tolist() == [2, 1, 0]
    assert [t.tolist() for t in batch.to(torch.device("cpu")).labels] == [[0, 1, 0, 2], [0, 1, 2]]
    assert collate([online, record]).labels is None  # without a class list: as before
    with pytest.raises(ValueError, match="^sample 000000003: instance class 'emu' is not among the run's 2"):
        collate([online, record], classes=["cat", "dog"])
    with pytest.raises(ValueError, match="^sample 5 lists no instance classes"):
        collate([SimpleNamespace(index=5, views=[view([0]), view([0])])], classes=["cat"])


def test_roi_class_losses_are_cross_entropy_per_view_and_branch():
    ln2 = math.log(2)
    logits = [{"size": torch.tensor([[0.0, 0.0], [100.0, 0.0]])}, {"size": torch.tensor([[0.0, 100.0]])}]
    labels = [torch.tensor([1, 0]), torch.tensor([0])]
    # view 0: even odds (ln 2) and sure and right (0); view 1: sure and wrong by 100
    losses = roi_class_losses(logits, labels)
    assert {str(k): v.item() for k, v in losses.items()} == pytest.approx({"0": ln2 / 2, "1": 100.0})
    two_levels = [{"p2": torch.zeros(1, 2), "p3": torch.tensor([[0.0, 100.0]])}]
    levels = roi_class_losses(two_levels, [torch.tensor([1])])
    assert {k: v.item() for k, v in levels.items()} == pytest.approx({LossTerm("p2", (0,)): ln2,
                                                                      LossTerm("p3", (0,)): 0.0})
    # named as CoDo's terms are, so the level weights apply alike: (3 ln 2 + 1 x 0) / 4
    assert total_loss(levels, {"p2": 3.0, "p3": 1.0}).item() == pytest.approx(3 * ln2 / 4)


def write_info(folder, labels=None):
    folder.mkdir(parents=True)
    instances = {"items": 3} if labels is None else {"items": 3, "labels": labels}
    (folder / "_info.json").write_text(json.dumps({"sources": {"instances": instances}}))
    return str(folder / "codo-000000.tar")


def test_a_run_knows_its_classes_before_training_or_says_why_not(tmp_path):
    a, b = write_info(tmp_path / "a", ["dog", "cat"]), write_info(tmp_path / "b", ["emu", "cat"])
    assert instance_classes(ShardDataset([a, b])) == ["cat", "dog", "emu"]  # the folders' sorted union
    online = CoDoDataset("sample", "sample")
    assert instance_classes(online) == online.synth.instances.labels and len(instance_classes(online)) == 12
    old = write_info(tmp_path / "old")
    with pytest.raises(InputError, match=r"old/_info.json lists none \(shards made by an older codo-aug\)"):
        instance_classes(ShardDataset([a, old]))
    with pytest.raises(InputError, match=r"nowhere has no readable one \(an unfinished codo-aug synth"):
        instance_classes(ShardDataset([str(tmp_path / "nowhere" / "codo-000000.tar")]))
    one = write_info(tmp_path / "one", ["thing"])
    with pytest.raises(InputError, match=r"the shards' instance source has 1 \('thing'\): give instances"):
        instance_classes(ShardDataset([one]))


def test_synth_run_again_adds_the_class_list_to_an_older_info(tmp_path):
    command = ("codo-aug", "synth", "--out", str(tmp_path / "s"), "--num-samples", "2", "--set",
               "view_sizes=[64, 48]")
    cli(*command, check=True)
    info_path = tmp_path / "s" / "_info.json"
    info = json.loads(info_path.read_text())
    labels = info["sources"]["instances"].pop("labels")
    assert labels == sorted(set(labels)) and len(labels) == 12
    info_path.write_text(json.dumps(info))  # as codo-aug wrote it before the class list
    cli(*command, check=True)
    assert json.loads(info_path.read_text())["sources"]["instances"]["labels"] == labels


def test_supervised_model_is_codos_box_features_and_a_roi_classifier_that_exports_leave_out():
    torch.manual_seed(0)
    supervised = TrainConfig(shards="x", out="y", objective="supervised", arch="resnet18")
    model = build_model(Supervised.model_config(supervised, ["a", "b", "c"]))
    assert isinstance(model, SupervisedModel) and model.classifier.out_features == 3
    codo = CoDoModel("resnet18").state_dict()
    features = {k for k in codo if k.startswith(("online.backbone.", "online.box_head."))}
    # CoDo's online backbone, FPN and box head, under the same names; no target, projector or predictor
    assert set(model.state_dict()) == features | {"classifier.weight", "classifier.bias"}
    views = [torch.rand(2, 3, 64, 64), torch.rand(2, 3, 48, 48)]
    rois = [[torch.tensor([[4.0, 4.0, 40.0, 40.0]])] * 2, [torch.tensor([[2.0, 2.0, 30.0, 30.0]])] * 2]
    logits, targets = model(views, rois)
    assert [x["size"].shape for x in logits] == [(2, 3), (2, 3)] and targets == []
    levels = SupervisedModel("resnet18", 3, levels="all")(views, rois)[0]
    assert sorted(levels[0]) == ["p2", "p3", "p4", "p5"]
    weights, skipped = torchvision_weights(model.state_dict())
    assert {"classifier.weight", "classifier.bias"} <= set(skipped)
    assert not any("classifier" in k for k in weights)
    with pytest.raises(ValueError, match="a supervised model needs its instance classes"):
        build_model(Supervised.model_config(supervised))


@pytest.mark.slow
def test_the_classifier_learns_the_instance_classes_of_a_batch():
    data = CoDoDataset("sample", "sample", seed=0, config=SynthConfig(view_sizes=(64, 48)))
    classes = data.synth.instances.labels
    batch = collate([data[i] for i in range(8)], classes=classes)
    views = [(v.float() / 255 - 0.45) / 0.225 for v in batch.views]
    torch.manual_seed(0)
    model = SupervisedModel("resnet18", len(classes)).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    losses, accuracy = [], []
    for _ in range(15):
        logits, _ = model(views, batch.rois)
        loss = total_loss(roi_class_losses(logits, batch.labels), {})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        hits = [(x["size"].argmax(1) == y).float() for x, y in zip(logits, batch.labels)]
        accuracy.append(torch.cat(hits).mean().item())
    assert losses[0] == pytest.approx(math.log(len(classes)), abs=0.5)  # chance at the start
    assert max(losses[-3:]) < 0.25 * losses[0]
    assert accuracy[0] < 0.4 and min(accuracy[-3:]) >= 0.9  # the batch's classes learnt


@pytest.mark.slow
def test_supervised_pretraining_exports_and_finetunes_as_codo_does(train_shards, coco_set, coco_val,
                                                                   tmp_path):
    run = tmp_path / "run"
    cli("codo-train", "run", "--shards", str(train_shards), "--objective", "supervised", "--steps", "3",
        "--arch", "resnet18", "--batch-size", "4", "--out", str(run), check=True)
    classes = json.loads((train_shards / "_info.json").read_text())["sources"]["instances"]["labels"]
    assert json.loads((run / "config.json").read_text())["classes"] == classes
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(m["pairs"]) for m in lines] == [["0", "1", "2"]] * 3  # one cross-entropy per view
    assert lines[0]["loss"] == pytest.approx(math.log(len(classes)), abs=0.5)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert state["classifier.weight"].shape == (len(classes), 1024)
    exported = cli("codo-train", "export", str(run), "--out", str(tmp_path / "w.pth"), check=True)
    assert "classifier.weight: 1" in exported.stderr.split("skipped")[1]
    assert not any("classifier" in k for k in torch.load(tmp_path / "w.pth", weights_only=True))
    proc = cli("codo-train", "finetune", "--weights", str(tmp_path / "w.pth"), "--coco", coco_set,
               "--val", coco_val, "--iters", "1", "--arch", "resnet18", "--min-size", "96",
               "--rois-per-image", "32", "--proposals", "50", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)["bbox"]) == 12
