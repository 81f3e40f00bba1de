"""Detection fine-tuning: exported weights load into the detector, training runs, COCOeval reports."""

import json

import pytest
import torch
import torchvision

from codo_aug.errors import InputError
from codo_train.evaluate.detector import build_detector, freeze_batchnorm, read_weights, weights_arch
from codo_train.export.write import export
from codo_train.models.codo import CoDoModel

from .helpers import cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftw")
    torch.manual_seed(0)
    model = CoDoModel("resnet18", 64, 16).state_dict()
    torch.save({"step": 1, "config": {"arch": "resnet18"}, "model": model}, d / "last.pt")
    cli("codo-train", "export", str(d / "last.pt"), "--out", str(d / "tv.pth"), check=True)
    return d / "tv.pth"


def test_detector_matches_torchvision_v2_names_for_resnet50():
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    ours = {k: v.shape for k, v in build_detector("resnet50", 91, masks=True).state_dict().items()}
    reference = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    theirs = {k: v.shape for k, v in reference.state_dict().items()}
    assert ours == theirs


@pytest.mark.slow
def test_finetune_from_exported_weights_prints_cocoeval(coco_set, coco_val, exported):
    proc = cli("codo-train", "finetune", "--weights", str(exported), "--coco", coco_set, "--val", coco_val,
               "--iters", "2", "--arch", "resnet18", "--min-size", "128", "--rois-per-image", "64",
               "--proposals", "100", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in proc.stderr
    stats = json.loads(proc.stdout)  # stdout is the JSON alone; COCOeval's summaries went to stderr
    assert set(stats) == {"bbox", "segm", "iters"} and list(stats["iters"]) == ["2"]
    # the final stats stay on top
    assert stats["iters"]["2"] == {"bbox": stats["bbox"], "segm": stats["segm"]}
    assert all(len(stats[k]) == 12 and all(-1.0 <= x <= 1.0 for x in stats[k]) for k in ("bbox", "segm"))


def test_head_budget_options_reach_the_detector():
    default = build_detector("resnet18", 4, masks=False)
    small = build_detector("resnet18", 4, masks=False, rois_per_image=128, proposals=300)
    assert default.roi_heads.fg_bg_sampler.batch_size_per_image == 512
    assert default.rpn._post_nms_top_n == {"training": 2000, "testing": 1000}
    assert small.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    assert small.rpn._post_nms_top_n == {"training": 300, "testing": 300}


def test_frozen_batchnorm_keeps_the_resnets_statistics_and_affine_through_training():
    torch.manual_seed(0)
    model = build_detector("resnet18", 3, masks=False, min_size=64, max_size=96).train()
    body = model.backbone.body
    assert freeze_batchnorm(body) == 20  # resnet18: stem 1 + 8 blocks x 2 + 3 downsamples
    before = {k: v.clone() for k, v in body.state_dict().items()}
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
    sum(model([torch.rand(3, 64, 64)], [target]).values()).backward()
    assert all(torch.equal(v, body.state_dict()[k]) for k, v in before.items())  # running stats untouched
    assert body.bn1.weight.grad is None and body.conv1.weight.grad is not None
    assert [m.training for m in model.backbone.fpn.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]


def test_freeze_at_keeps_the_first_stages_whole_and_trains_the_rest():
    from codo_train.evaluate.finetune import _train_mode
    from codo_train.evaluate.finetune_config import FinetuneConfig

    torch.manual_seed(0)
    model = build_detector("resnet18", 3, masks=False, min_size=64, max_size=96)
    _train_mode(model, FinetuneConfig(arch="resnet18", freeze_at=2))  # detectron2's default: stem and res2
    body = model.backbone.body
    before = {k: v.clone() for k, v in body.state_dict().items()}
    target = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 40.0]]), "labels": torch.tensor([1])}
    sum(model([torch.rand(3, 64, 64)], [target]).values()).backward()
    frozen = ("conv1.", "bn1.", "layer1.")
    assert all(torch.equal(v, body.state_dict()[k]) for k, v in before.items() if k.startswith(frozen))
    assert body.bn1.running_mean.equal(before["bn1.running_mean"]) and not body.layer1.training
    assert body.conv1.weight.grad is None and body.layer1[0].conv1.weight.grad is None
    assert body.layer2[0].conv1.weight.grad is not None and body.layer2.training
    assert not body.layer2[0].bn1.running_mean.equal(before["layer2.0.bn1.running_mean"])  # res3 learns


@pytest.mark.parametrize("args, needle", [
    (("--freeze-at", "6"), "invalid freeze_at=6: must be in 0..5"),
    (("--iters", "0"), "invalid iters=0: must be >= 1"),
    (("--lr", "0"), "invalid lr=0.0: must be in (0, 10]"),
    (("--arch", "vgg"), "invalid arch='vgg'"),
    (("--proposals", "-1"), "invalid proposals=-1"),
    (("--device", "cuda"), "--device cuda: CUDA is not available"),
    (("--freeze-bn",), "--freeze-bn keeps loaded statistics: it needs --weights"),
])
def test_bad_finetune_options_are_one_line_errors(coco_set, args, needle):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = cli("codo-train", "finetune", "--weights", "none", "--coco", coco_set, "--val", coco_set, *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_weights_of_another_architecture_are_refused_in_one_line(coco_set, exported):
    proc = cli("codo-train", "finetune", "--weights", str(exported), "--coco", coco_set, "--val", coco_set,
               "--iters", "1", "--arch", "resnet50", "--min-size", "128")
    assert proc.returncode == 2 and "does not fit this detector's resnet50 backbone:" in proc.stderr
    assert proc.stderr.rstrip().endswith("key(s); the weights are resnet18's: pass --arch resnet18")
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = cli("codo-train", "finetune", "--weights", "none", "--coco", "/no/such.json", "--val", coco_set,
              "--iters", "1")
    assert bad.returncode == 2 and "--coco: path does not exist: /no/such.json" in bad.stderr


def export_hint(path) -> str:
    return f"export it first: codo-train export {path} --format torchvision --out weights.pth"


@pytest.mark.parametrize("kind", ["checkpoint", "run folder", "detectron2", "mmdet"])
def test_what_is_not_torchvision_weights_is_named(exported, tmp_path, kind):
    checkpoint = exported.parent / "last.pt"  # as `codo-train run` saves it: step, config, model
    weights = {"checkpoint": checkpoint, "run folder": tmp_path / "run", "detectron2": tmp_path / "d2.pkl",
               "mmdet": tmp_path / "mmdet.pth"}[kind]
    if kind == "run folder":
        (weights / "checkpoints").mkdir(parents=True)
        (weights / "checkpoints" / "last.pt").write_bytes(checkpoint.read_bytes())
    elif kind != "checkpoint":
        export(checkpoint, kind, "head", weights)
    hint = export_hint(weights)
    message = {"checkpoint": f"is a codo-train training checkpoint, not detector weights; {hint}",
               "run folder": f"is a codo-train run folder, not detector weights; {hint}",
               "detectron2": "is not a torch file (a detectron2 .pkl?); --weights takes the output of",
               "mmdet": "is not a state dict of tensors (meta, state_dict...); --weights takes the output",
               }[kind]
    with pytest.raises(InputError) as error:
        read_weights(weights)
    assert str(error.value).startswith(f"{weights} {message}")


def test_a_training_checkpoint_given_to_finetune_is_one_line(coco_set, exported):
    checkpoint = exported.parent / "last.pt"
    proc = cli("codo-train", "finetune", "--weights", str(checkpoint), "--coco", coco_set, "--val", coco_set,
               "--arch", "resnet18")
    assert proc.returncode == 2
    assert proc.stderr == (f"codo-train: error: {checkpoint} is a codo-train training checkpoint, "
                           f"not detector weights; {export_hint(checkpoint)}\n")


@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_the_resnet_of_exported_weights_is_told_by_its_keys(arch):
    body = getattr(torchvision.models, arch)().state_dict()
    state = {f"backbone.body.{k}": v for k, v in body.items() if not k.startswith("fc.")}
    assert weights_arch(state) == arch
    assert weights_arch({"backbone.fpn.inner_blocks.0.0.weight": torch.zeros(1)}) is None
