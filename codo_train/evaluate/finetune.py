"""Detection fine-tuning of exported weights on a COCO-format set, evaluated with pycocotools COCOeval at
the iterations asked for and at the end."""

import contextlib
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader

from codo_aug.errors import RunError
from codo_aug.sources.coco import CocoFiles

from ..distributed import require_device
from .coco_detection import CocoDetection, collate
from .detector import build_detector, freeze_batchnorm, load_pretrained, read_weights
from .finetune_config import FinetuneConfig, require_weights
from .schedule import finetune_lr

log = logging.getLogger(__name__)


def _detections(data: CocoDetection, model: torch.nn.Module, device: torch.device) -> list[dict]:
    """The model's detections on `data` as COCO result rows (RLE masks when the model predicts them)."""
    model.eval()
    results = []
    for images, targets in DataLoader(data, batch_size=2, collate_fn=collate):
        outputs = model([im.to(device) for im in images])
        for target, out in zip(targets, outputs):
            for j in range(len(out["boxes"])):
                x1, y1, x2, y2 = out["boxes"][j].tolist()
                row = {"image_id": target["image_id"], "bbox": [x1, y1, x2 - x1, y2 - y1],
                       "category_id": data.categories[int(out["labels"][j]) - 1],
                       "score": float(out["scores"][j])}
                if "masks" in out:
                    mask = (out["masks"][j, 0] > 0.5).cpu().numpy().astype(np.uint8)
                    rle = mask_utils.encode(np.asfortranarray(mask))
                    row["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                results.append(row)
    return results


def _results(gt: COCO, rows: list[dict]) -> COCO:
    """`rows` as a COCO result set; with no row an empty one (pycocotools' loadRes refuses an empty list)."""
    if rows:
        return gt.loadRes(rows)
    empty = COCO()
    empty.dataset = {**{k: gt.dataset[k] for k in ("images", "categories")}, "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: CocoDetection, device: torch.device,
             at: int | None = None) -> dict[str, list[float]]:
    """COCOeval stats (the 12 standard numbers) for bbox and, with masks, segm, printed as pycocotools prints
    them (headed with the iteration `at` when given). A model that detects nothing still gets its summary
    (0, or -1 where the set has no ground truth)."""
    rows = _detections(data, model, device)
    if not rows:
        log.warning("the model made no detection on the %d validation image(s): COCOeval scores it 0 "
                    "(-1 where the set has no ground truth of that size)", len(data))
    detections = _results(data.coco, rows)
    stats = {}
    for iou_type in (("bbox", "segm") if data.masks else ("bbox",)):
        ev = COCOeval(data.coco, detections, iou_type)
        ev.params.imgIds = data.ids
        print(f"COCOeval {iou_type}" + (f" at iteration {at}:" if at else ":"))
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats[iou_type] = [float(x) for x in ev.stats]
    return stats


@dataclass(frozen=True)
class FinetuneResult:
    """COCOeval stats ({'bbox': 12 numbers, 'segm': ...}) by the iteration they were measured after."""

    by_iter: dict[int, dict[str, list[float]]]

    @property
    def final(self) -> dict[str, list[float]]:
        """The stats at the end of the run."""
        return self.by_iter[max(self.by_iter)]

    def to_dict(self) -> dict:
        """The final stats at the top level (where they were before `eval_at`), every evaluation under
        'iters' keyed by the iteration as a string (JSON keys)."""
        return {**self.final, "iters": {str(i): stats for i, stats in sorted(self.by_iter.items())}}

    def table(self) -> str:
        """One line per evaluation: the iteration, bbox AP, AP50, AP75 and (with masks) segm AP."""
        masks = "segm" in self.final
        head = f"{'iteration':>9}{'bbox AP':>9}{'AP50':>8}{'AP75':>8}"
        lines = [head + (f"{'segm AP':>9}" if masks else "")]
        for i, stats in sorted(self.by_iter.items()):
            box = stats["bbox"]
            lines.append(f"{i:>9}{box[0]:>9.3f}{box[1]:>8.3f}{box[2]:>8.3f}"
                         + (f"{stats['segm'][0]:>9.3f}" if masks else ""))
        return "\n".join(lines)


def frozen_stages(body: torch.nn.Module, freeze_at: int) -> list[torch.nn.Module]:
    """The first `freeze_at` stages of a torchvision ResNet body: the stem (conv1 + bn1), then layer1..4
    (detectron2's FREEZE_AT counts them so: 2 is the stem and res2)."""
    stages = [torch.nn.ModuleList([body.conv1, body.bn1]), body.layer1, body.layer2, body.layer3, body.layer4]
    return stages[:freeze_at]


def _train_mode(model: torch.nn.Module, cfg: FinetuneConfig) -> None:
    """Training mode, the ResNet's BatchNorm kept frozen with `freeze_bn` and the first `freeze_at` stages
    kept whole (weights and statistics), again after each evaluation."""
    model.train()
    if cfg.freeze_bn:
        freeze_batchnorm(model.backbone.body)
    for stage in frozen_stages(model.backbone.body, cfg.freeze_at):
        stage.eval()
        stage.requires_grad_(False)


def make_optimizer(model: torch.nn.Module, cfg: FinetuneConfig) -> torch.optim.SGD:
    """SGD with momentum 0.9 and `cfg.weight_decay` over the trainable parameters, at the rate for
    `cfg.batch_size` (`cfg.lr` is for 16 images); `finetune_lr` sets each iteration's rate."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=cfg.lr * cfg.batch_size / 16, momentum=0.9,
                           weight_decay=cfg.weight_decay)


def finetune(weights: Path | None, train: CocoFiles, val: CocoFiles, cfg: FinetuneConfig,
             on_iter: Callable[[int, float], None] = lambda i, loss: None,
             on_start: Callable[[int], None] = lambda iters: None) -> FinetuneResult:
    """Fine-tune a detector (from `weights`, or random init for None) for `cfg.iters` iterations,
    evaluating it on `val` after each of `cfg.eval_points`. Weights and every image are checked before
    training starts.

    `on_start(iters)` is called once data and weights are loaded, `on_iter(i, loss)` after each iteration.
    """
    require_weights(cfg, weights)
    state = None if weights is None else read_weights(weights)
    torch.manual_seed(cfg.seed)
    train_data = CocoDetection(train, option="--coco")
    val_data = CocoDetection(val, train_data.categories, option="--val")
    dev = require_device(cfg.device)
    model = build_detector(cfg.arch, len(train_data.categories) + 1, train_data.masks, cfg.min_size,
                           int(cfg.min_size * 1.5), cfg.rois_per_image, cfg.proposals, cfg.predictor_init,
                           cfg.box_head_bn)
    if state is not None:
        load_pretrained(model, state, weights, cfg.arch)
    model.to(dev)
    _train_mode(model, cfg)
    opt = make_optimizer(model, cfg)
    base = opt.defaults["lr"]
    loader = DataLoader(train_data, batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed))
    step, by_iter = 0, {}
    on_start(cfg.iters)
    while step < cfg.iters:
        for images, targets in loader:
            for group in opt.param_groups:
                group["lr"] = finetune_lr(step, cfg.iters, base, cfg.schedule)
            targets = [{k: v.to(dev) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]
            losses = model([im.to(dev) for im in images], targets)
            loss = sum(losses.values())
            if not math.isfinite(loss.item()):
                raise RunError(f"fine-tuning diverged at iteration {step + 1} (loss {loss.item()}); "
                               "lower --lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            on_iter(step, loss.item())
            if step in cfg.eval_points:
                by_iter[step] = evaluate(model, val_data, dev, step)
                _train_mode(model, cfg)
            if step >= cfg.iters:
                break
    return FinetuneResult(by_iter)
