"""Detection fine-tuning: exported weights load into the detector, training runs, COCOeval reports."""

import json

import pytest
import torch

from codo_train.evaluate.detector import build_detector, freeze_batchnorm
from codo_train.models.codo import CoDoModel

from .helpers import cli


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "set"
    cli("codo-aug", "synth", "--format", "coco", "--out", str(out), "--num-samples", "6",
        "--set", "view_sizes=[128, 96]", check=True)
    return f"{out / 'annotations' / 'instances.json'}:{out / 'images'}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("ftw")
    torch.manual_seed(0)
    torch.save({"step": 1, "config": {"arch": "resnet18"}, "model": CoDoModel("resnet18", 64, 16).state_dict()},
               d / "last.pt")
    cli("codo-train", "export", str(d / "last.pt"), "--out", str(d / "tv.pth"), check=True)
    return d / "tv.pth"


def test_detector_matches_torchvision_v2_names_for_resnet50():
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    ours = {k: v.shape for k, v in build_detector("resnet50", 91, masks=True).state_dict().items()}
    theirs = {k: v.shape for k, v in maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict().items()}
    assert ours == theirs


@pytest.mark.slow
def test_finetune_from_exported_weights_prints_cocoeval(coco_set, exported):
    proc = cli("codo-train", "finetune", "--weights", str(exported), "--coco", coco_set, "--val", coco_set,
               "--iters", "2", "--arch", "resnet18", "--min-size", "128", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in proc.stderr
    stats = json.loads(proc.stdout)  # stdout is the JSON alone; COCOeval's summaries went to stderr
    assert set(stats) == {"bbox", "segm"} and all(len(v) == 12 for v in stats.values())
    assert all(-1.0 <= x <= 1.0 for v in stats.values() for x in v)


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


@pytest.mark.parametrize("args, needle", [
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
    assert proc.returncode == 2 and "does not fit this detector's backbone:" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    bad = cli("codo-train", "finetune", "--weights", "none", "--coco", "/no/such.json", "--val", coco_set, "--iters", "1")
    assert bad.returncode == 2 and "no instances json at /no/such.json" in bad.stderr
