"""The settings of a fine-tuning run and its validation set, checked before torch loads (so a bad option
is a one-line error at once, not after the seconds torch and torchvision take to import)."""

from dataclasses import dataclass
from pathlib import Path

from codo_aug.errors import InputError
from codo_aug.settings import require
from codo_aug.sources.coco import CocoFiles, locate_coco

from ..config import ARCHS
from .predictor_init import PREDICTOR_INITS
from .schedule import SCHEDULES


@dataclass(frozen=True)
class FinetuneConfig:
    """A fine-tuning run, detectron2's Mask R-CNN R50-FPN 1x recipe (configs/Base-RCNN-FPN.yaml) where
    it has one: SGD with momentum 0.9 at `lr` 0.02 for 16 images, scaled to `batch_size`; linear
    warm-up, then `schedule` 'step' (x0.1 at 2/3 and 8/9 of `iters`: the 1x schedule's 60k and 80k of
    90k) or 'cosine'; `weight_decay` 1e-4 (SOLVER.WEIGHT_DECAY); `predictor_init` 'detectron2' (class
    scores N(0, 0.01), box deltas N(0, 0.001)) or 'torchvision' (nn.Linear's default). `box_head_bn`
    adds InsLoc's BatchNorm after the box head's fc (off: the stock detector). COCOeval runs at each
    iteration of `eval_at` and at the end. The detector's input size and head budget: see
    `build_detector`; `freeze_bn` keeps the ResNet's BatchNorm at the loaded weights' statistics
    instead of re-estimating them from each small batch; `freeze_at` keeps the first stages of the ResNet
    (1: the stem, 2: stem and res2 as detectron2's MODEL.BACKBONE.FREEZE_AT, ... 5: all) at their loaded
    weights and statistics, which also spares their backward pass. `seed` fixes the heads' initialisation and
    the data order."""

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
    schedule: str = "step"
    eval_at: tuple[int, ...] = ()
    weight_decay: float = 1e-4
    predictor_init: str = "detectron2"
    box_head_bn: bool = False
    freeze_at: int = 0

    def __post_init__(self) -> None:
        require(self.iters >= 1, "iters", self.iters, ">= 1")
        require(self.arch in ARCHS, "arch", self.arch, f"one of {', '.join(ARCHS)}")
        require(self.device == "cpu" or self.device.startswith("cuda"), "device", self.device,
                "cpu or cuda[:N]")
        require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        require(0 < self.lr <= 10, "lr", self.lr, "in (0, 10]")
        require(32 <= self.min_size <= 4096, "min_size", self.min_size, "in 32..4096")
        require(self.rois_per_image >= 1, "rois_per_image", self.rois_per_image, ">= 1")
        require(self.proposals >= 0, "proposals", self.proposals, ">= 0 (0: torchvision's defaults)")
        require(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {', '.join(SCHEDULES)}")
        require(all(1 <= i <= self.iters for i in self.eval_at), "eval_at", self.eval_at,
                f"iterations in 1..{self.iters} (iters)")
        require(0 <= self.weight_decay < 1, "weight_decay", self.weight_decay, "in [0, 1)")
        require(0 <= self.freeze_at <= 5, "freeze_at", self.freeze_at,
                "in 0..5 (0: none, 1: the stem, 2: stem and res2, ... 5: the whole ResNet)")
        require(self.predictor_init in PREDICTOR_INITS, "predictor_init", self.predictor_init,
                f"one of {', '.join(PREDICTOR_INITS)}")

    @property
    def eval_points(self) -> list[int]:
        """The iterations evaluated after, ascending: `eval_at` and the last."""
        return sorted({*self.eval_at, self.iters})


def locate_val(text: str) -> CocoFiles:
    """The validation set of `--val`; a folder whose json is a train split (what `locate_coco` picks among
    several) is refused rather than evaluated on."""
    files = locate_coco(text, "--val")
    if Path(text).is_dir() and "train" in files.json.name:
        val = files.json.with_name(files.json.name.replace("train", "val"))
        raise InputError(f"--val {text}: that folder's json is a train split ({files.json.name}); give the "
                         f"validation json itself, e.g. --val {val}")
    return files


def require_weights(cfg: FinetuneConfig, weights: Path | None) -> None:
    """InputError when `cfg` needs loaded weights (freeze_bn) and the run starts from random init."""
    if cfg.freeze_bn and weights is None:
        raise InputError("--freeze-bn keeps loaded statistics: it needs --weights (random init has none)")
