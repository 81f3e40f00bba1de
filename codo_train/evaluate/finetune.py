"""Detection fine-tuning of exported weights on a COCO-format set, evaluated with pycocotools COCOeval."""

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from torch.utils.data import DataLoader, Dataset

from codo_aug.errors import InputError, RunError
from codo_aug.settings import require
from codo_aug.sources.decode import BadImage, decode

from ..config import ARCHS
from ..distributed import require_device
from .detector import build_detector, freeze_batchnorm, load_pretrained


@dataclass(frozen=True)
class CocoSplit:
    """An instances json and the folder its `file_name`s are relative to."""

    json: Path
    images: Path

    @classmethod
    def parse(cls, text: str, option: str) -> "CocoSplit":
        """'JSON:IMAGES' (or just JSON, images beside it)."""
        json_part, sep, images = text.rpartition(":") if ":" in text else (text, "", "")
        json_path = Path(json_part if sep else text)
        root = Path(images) if sep else json_path.parent
        if not json_path.is_file():
            raise InputError(f"{option}: no instances json at {json_path}")
        if not root.is_dir():
            raise InputError(f"{option}: no image folder at {root}")
        return cls(json_path, root)


def _quiet_coco(path: Path) -> COCO:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except Exception as exc:  # noqa: BLE001 - a broken json, whatever pycocotools makes of it
        raise InputError(f"{path} is not a COCO instances file ({type(exc).__name__}: {exc})") from None


class CocoDetection(Dataset):
    """Images with their boxes, labels (1..C by category id order) and, when present, masks."""

    def __init__(self, split: CocoSplit, categories: list[int] | None = None):
        self.coco = _quiet_coco(split.json)
        self.root = split.images
        self.categories = categories or sorted(self.coco.getCatIds())
        self.label = {c: i + 1 for i, c in enumerate(self.categories)}
        self.ids = [i for i in sorted(self.coco.getImgIds()) if self._anns(i)]
        if not self.ids:
            raise InputError(f"{split.json} has no image with a usable annotation")
        self.masks = all("segmentation" in a for i in self.ids for a in self._anns(i))

    def _anns(self, image_id: int) -> list[dict]:
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, iscrowd=False))
        return [a for a in anns if a["category_id"] in self.label and a["bbox"][2] >= 1 and a["bbox"][3] >= 1]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int):
        image_id = self.ids[k]
        info = self.coco.loadImgs(image_id)[0]
        try:
            rgb = decode(str(self.root / info["file_name"]), exif=False)
        except BadImage as bad:
            raise InputError(f"cannot read a fine-tuning image: {bad}") from None
        anns = self._anns(image_id)
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32)
        target = {"boxes": boxes, "labels": torch.tensor([self.label[a["category_id"]] for a in anns]),
                  "image_id": image_id}
        if self.masks:
            target["masks"] = torch.from_numpy(np.stack([self.coco.annToMask(a) for a in anns]))
        return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0, target


def _collate(batch):
    return tuple(zip(*batch))


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: CocoDetection, device: torch.device) -> dict[str, list[float]]:
    """COCOeval stats (the 12 standard numbers) for bbox and, with masks, segm; printed as pycocotools prints them."""
    model.eval()
    results = []
    for images, targets in DataLoader(data, batch_size=2, collate_fn=_collate):
        outputs = model([im.to(device) for im in images])
        for target, out in zip(targets, outputs):
            for j in range(len(out["boxes"])):
                x1, y1, x2, y2 = out["boxes"][j].tolist()
                row = {"image_id": target["image_id"], "category_id": data.categories[int(out["labels"][j]) - 1],
                       "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(out["scores"][j])}
                if "masks" in out:
                    rle = mask_utils.encode(np.asfortranarray((out["masks"][j, 0] > 0.5).cpu().numpy().astype(np.uint8)))
                    row["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                results.append(row)
    stats = {}
    for iou_type in (("bbox", "segm") if data.masks else ("bbox",)):
        if not results:
            stats[iou_type] = [0.0] * 12
            continue
        detections = data.coco.loadRes(results)
        ev = COCOeval(data.coco, detections, iou_type)
        ev.params.imgIds = data.ids
        print(f"COCOeval {iou_type}:")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        stats[iou_type] = [float(x) for x in ev.stats]
    return stats


@dataclass(frozen=True)
class FinetuneConfig:
    """A fine-tuning run: SGD at `lr` for 16 images scaled to `batch_size` (detectron2's 0.02 recipe),
    linear warm-up; the detector's input size and head budget (see `build_detector`); `freeze_bn`
    keeps the ResNet's BatchNorm at the loaded weights' statistics instead of re-estimating them
    from each small batch."""

    iters: int = 1000
    arch: str = "resnet50"
    device: str = "cpu"
    batch_size: int = 2
    lr: float = 0.02
    seed: int = 0
    min_size: int = 512
    rois_per_image: int = 512
    proposals: int = 0
    freeze_bn: bool = False

    def __post_init__(self) -> None:
        require(self.iters >= 1, "iters", self.iters, ">= 1")
        require(self.arch in ARCHS, "arch", self.arch, f"one of {', '.join(ARCHS)}")
        require(self.device == "cpu" or self.device.startswith("cuda"), "device", self.device, "cpu or cuda[:N]")
        require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        require(0 < self.lr <= 10, "lr", self.lr, "in (0, 10]")
        require(32 <= self.min_size <= 4096, "min_size", self.min_size, "in 32..4096")
        require(self.rois_per_image >= 1, "rois_per_image", self.rois_per_image, ">= 1")
        require(self.proposals >= 0, "proposals", self.proposals, ">= 0 (0: torchvision's defaults)")


def finetune(weights: Path | None, train: CocoSplit, val: CocoSplit, cfg: FinetuneConfig,
             on_iter: Callable[[int, float], None] = lambda i, loss: None,
             on_start: Callable[[int], None] = lambda iters: None) -> dict[str, list[float]]:
    """Fine-tune a detector (from `weights`, or random init for None) for `cfg.iters` iterations and evaluate on `val`.

    `on_start(iters)` is called once data and weights are loaded, `on_iter(i, loss)` after each iteration.
    """
    if cfg.freeze_bn and weights is None:
        raise InputError("--freeze-bn keeps loaded statistics: it needs --weights (random init has none)")
    torch.manual_seed(cfg.seed)
    train_data = CocoDetection(train)
    val_data = CocoDetection(val, train_data.categories)
    dev = require_device(cfg.device)
    model = build_detector(cfg.arch, len(train_data.categories) + 1, train_data.masks, cfg.min_size,
                           int(cfg.min_size * 1.5), cfg.rois_per_image, cfg.proposals)
    if weights is not None:
        load_pretrained(model, weights)
    model.to(dev).train()
    if cfg.freeze_bn:
        freeze_batchnorm(model.backbone.body)
    params = [p for p in model.parameters() if p.requires_grad]
    base = cfg.lr * cfg.batch_size / 16
    opt = torch.optim.SGD(params, lr=base, momentum=0.9, weight_decay=1e-4)
    loader = DataLoader(train_data, batch_size=cfg.batch_size, shuffle=True, collate_fn=_collate,
                        generator=torch.Generator().manual_seed(cfg.seed))
    step, warmup = 0, max(1, min(100, cfg.iters // 5))
    on_start(cfg.iters)
    while step < cfg.iters:
        for images, targets in loader:
            for group in opt.param_groups:
                group["lr"] = base * min(1.0, (step + 1) / warmup)
            losses = model([im.to(dev) for im in images],
                           [{k: v.to(dev) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets])
            loss = sum(losses.values())
            if not math.isfinite(loss.item()):
                raise RunError(f"fine-tuning diverged at iteration {step + 1} (loss {loss.item()}); lower --lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            on_iter(step, loss.item())
            if step >= cfg.iters:
                break
    return evaluate(model, val_data, dev)
