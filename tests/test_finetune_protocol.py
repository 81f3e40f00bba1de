"""The fine-tuning protocol: rate schedule, evaluation points, predictor init, box-head BN, weight decay."""

import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from codo_train.evaluate.detector import build_detector, load_pretrained
from codo_train.evaluate.finetune import FinetuneResult, make_optimizer
from codo_train.evaluate.finetune_config import FinetuneConfig
from codo_train.evaluate.schedule import cosine_decay, finetune_lr, step_decay, warmup_iters
from codo_train.export.names import torchvision_weights
from codo_train.models.codo import CoDoModel

from .helpers import cli


def test_step_decay_is_detectron2s_1x_shape():
    # detectron2's 1x: 90k iterations, x0.1 from iteration 60k and again from 80k
    assert [step_decay(i, 90_000) for i in (0, 59_999, 60_000, 79_999, 80_000, 89_999)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    # 9 iterations: drops start at ceil(6) = 6 and ceil(8) = 8; 10: at ceil(6.67) = 7 and ceil(8.89) = 9
    assert [step_decay(i, 9) for i in range(9)] == pytest.approx([1.0] * 6 + [0.1] * 2 + [0.01])
    assert [step_decay(i, 10) for i in range(10)] == pytest.approx([1.0] * 7 + [0.1] * 2 + [0.01])
    assert step_decay(0, 1) == 1.0  # a one-iteration run keeps its rate


def test_cosine_decay_and_the_warmup_multiply_the_base_rate():
    quarter = 0.5 * (1 - math.sqrt(0.5))
    assert [cosine_decay(i, 100) for i in (0, 50, 75)] == pytest.approx([1.0, 0.5, quarter])
    assert [warmup_iters(n) for n in (1, 4, 90, 500, 90_000)] == [1, 1, 18, 100, 100]
    # 90 iterations at 0.02: warm-up over 18, then 0.02 until 60, 0.002 until 80, 0.0002 after
    rates = {i: finetune_lr(i, 90, 0.02, "step") for i in (0, 8, 17, 59, 60, 80)}
    assert rates == pytest.approx({0: 0.02 / 18, 8: 0.02 * 9 / 18, 17: 0.02, 59: 0.02, 60: 0.002, 80: 0.0002})
    assert finetune_lr(45, 90, 0.02, "cosine") == pytest.approx(0.01)
    assert finetune_lr(0, 90, 0.02, "cosine") == pytest.approx(0.02 / 18)


def test_predictor_starts_as_detectron2_initialises_it():
    torch.manual_seed(0)
    ours = build_detector("resnet18", 81, masks=False).roi_heads.box_predictor
    assert ours.cls_score.weight.std().item() == pytest.approx(0.01, rel=0.03)
    assert ours.bbox_pred.weight.std().item() == pytest.approx(0.001, rel=0.03)
    assert not ours.cls_score.bias.any() and not ours.bbox_pred.bias.any()
    stock = build_detector("resnet18", 81, masks=False, predictor_init="torchvision").roi_heads.box_predictor
    # nn.Linear's default: uniform in +-1/sqrt(1024), std 1/sqrt(3 * 1024)
    assert stock.cls_score.weight.std().item() == pytest.approx(1 / math.sqrt(3 * 1024), rel=0.03)
    assert stock.cls_score.bias.abs().max().item() > 0


def test_box_head_bn_follows_the_fc_and_exported_weights_still_load(tmp_path):
    torch.manual_seed(0)
    weights, _ = torchvision_weights(CoDoModel("resnet18", 64, 16).state_dict())
    plain = build_detector("resnet18", 3, masks=False)
    extra = build_detector("resnet18", 3, masks=False, box_head_bn=True)
    assert isinstance(plain.roi_heads.box_head[-1], nn.ReLU)
    head = extra.roi_heads.box_head
    assert isinstance(head[-1], nn.BatchNorm1d) and head[-1].num_features == 1024
    assert isinstance(head[-3], nn.Linear) and isinstance(head[-2], nn.ReLU)  # fc -> ReLU -> BN (InsLoc)
    added = set(extra.state_dict()) - set(plain.state_dict())
    assert added == {f"roi_heads.box_head.7.{k}" for k in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert load_pretrained(extra, weights, tmp_path / "w.pth", "resnet18") == {"loaded": len(weights)}
    assert torch.equal(head[5].weight, weights["roi_heads.box_head.5.weight"])
    features = head.train()(torch.randn(64, 256, 7, 7))
    assert features.mean(0).abs().max().item() < 1e-4  # normalised over the RoIs of the batch
    assert features.std(0, unbiased=False).mean().item() == pytest.approx(1.0, abs=1e-2)


def test_weight_decay_and_the_batch_scaled_rate_reach_sgd():
    model = nn.Linear(2, 2)
    opt = make_optimizer(model, FinetuneConfig(batch_size=4, weight_decay=0.0))
    assert opt.defaults["lr"] == pytest.approx(0.02 * 4 / 16) and opt.defaults["weight_decay"] == 0.0
    assert opt.defaults["momentum"] == 0.9
    assert make_optimizer(model, FinetuneConfig()).defaults["weight_decay"] == 1e-4  # detectron2's


def test_result_keeps_the_final_stats_on_top_and_every_evaluation_by_iteration():
    def stats(ap):
        return {"bbox": [ap] + [0.0] * 11, "segm": [ap / 2] + [0.0] * 11}

    result = FinetuneResult({3: stats(0.3), 1: stats(0.1)})
    assert result.to_dict() == {**stats(0.3), "iters": {"1": stats(0.1), "3": stats(0.3)}}
    assert list(result.to_dict()["iters"]) == ["1", "3"]
    assert result.table().splitlines() == ["iteration  bbox AP    AP50    AP75  segm AP",
                                           "        1    0.100   0.000   0.000    0.050",
                                           "        3    0.300   0.000   0.000    0.150"]
    assert FinetuneConfig(iters=10, eval_at=(8, 2, 8)).eval_points == [2, 8, 10]


@pytest.mark.parametrize("args, needle", [
    (("--eval-at", "0,2"), "invalid eval_at=(0, 2): must be iterations in 1..3 (iters)"),
    (("--eval-at", "4"), "invalid eval_at=(4,): must be iterations in 1..3 (iters)"),
    (("--eval-at", "1,two"), "invalid eval_at='1,two': must be comma-separated iterations"),
    (("--schedule", "poly"), "invalid schedule='poly': must be one of step, cosine"),
    (("--predictor-init", "xavier"), "invalid predictor_init='xavier': must be one of detectron2, "),
    (("--weight-decay", "-1"), "invalid weight_decay=-1.0: must be in [0, 1)"),
])
def test_bad_protocol_options_are_one_line_errors(args, needle):
    proc = cli("codo-train", "finetune", "--weights", "none", "--coco", "/no/set.json",
               "--val", "/no/set.json", "--iters", "3", *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, needle", [
    (("--iters", "0"), "invalid iters=0"),
    (("--predictor-init", "xavier"), "invalid predictor_init='xavier'"),
    (("--val", "/no/set.json"), "--val: path does not exist"),
    (("--freeze-bn",), "--freeze-bn keeps loaded statistics: it needs --weights"),
])
def test_bad_finetune_options_are_refused_before_torch_loads(coco_set, args, needle):
    """Options and paths are checked first: the error comes at once, not after torch's import."""
    code = ("import sys\nfrom codo_cli.train import app\ntry:\n    app(sys.argv[1:])\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules, file=sys.stderr)")
    argv = ["finetune", "--weights", "none", "--coco", coco_set, "--val", coco_set, *args]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert needle in proc.stderr and proc.stderr.splitlines()[-1] == "2 False", proc.stderr


@pytest.mark.slow
def test_eval_at_reports_each_iteration_in_json_and_keeps_the_final_on_top(coco_set, coco_val, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "tv.pth"
    torch.save(torchvision_weights(CoDoModel("resnet18", 64, 16).state_dict())[0], weights)
    proc = cli("codo-train", "finetune", "--weights", str(weights), "--coco", coco_set, "--val", coco_val,
               "--iters", "3", "--eval-at", "1,2", "--schedule", "cosine", "--box-head-bn",
               "--arch", "resnet18", "--min-size", "96", "--rois-per-image", "32", "--proposals", "50",
               "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads(proc.stdout)
    assert set(stats) == {"bbox", "segm", "iters"} and list(stats["iters"]) == ["1", "2", "3"]
    assert all(set(s) == {"bbox", "segm"} and all(len(v) == 12 for v in s.values())
               for s in stats["iters"].values())
    assert {"bbox": stats["bbox"], "segm": stats["segm"]} == stats["iters"]["3"]
    headers = [f"COCOeval {kind} at iteration {i}:" for i in (1, 2, 3) for kind in ("bbox", "segm")]
    assert all(h in proc.stderr for h in headers)
