"""TrainConfig: every setting of a pretraining run, validated where it is built."""

from dataclasses import asdict, dataclass, fields
from typing import Any

from codo_aug.config import PHOTOMETRICS
from codo_aug.errors import InputError
from codo_aug.settings import build
from codo_aug.settings import require as _check

from .losses import LOSSES
from .objectives import OBJECTIVES
from .schedules import auto_momentum_base, scale_lr

#: The backbone registry: arch -> channels of its C2..C5 (torchvision.models.<arch> builds it, with the FPN on
#: top: codo_train.models.encoder). A name here is all a new ResNet needs.
ARCHS = {"resnet18": (64, 128, 256, 512), "resnet34": (64, 128, 256, 512), "resnet50": (256, 512, 1024, 2048)}
LEVEL_MODES = ("size", "all")  # how RoIs meet FPN levels: codo_train.models.levels
OPTIMIZERS = ("sgd", "lars", "adamw")
AMP = ("none", "bf16", "fp16")
LEVEL_RULES = ("fpn", "soco")  # which FPN level a box's size picks: codo_train.models.levels
LR_SCALINGS = ("linear", "sqrt", "auto")
#: Settings whose default changed after runs were saved without them: what such a run used.
BEFORE_THE_SETTING = {"level_rule": "fpn"}
DECODERS = ("cpu", "device")  # where shard views are decoded and photometrics (shards and online) applied


@dataclass(frozen=True)
class TrainConfig:
    """A CoDo run (DESIGN.md section 2).

    Optimisation: `optimizer` 'lars' with `lr` 1.0 and `weight_decay` 1e-5 is SoCo's (Wei et al. 2021:
    LARS of You et al. 2017, trust coefficient 1e-3, BN parameters and biases neither decayed nor
    adapted): its per-tensor trust ratio moves every stage by a similar share of its norm, where SGD
    moves the stem ~100x more than layer4 (issue 11's measurement; README "Optimisation"). 'sgd'
    (momentum 0.9) suits SimSiam's lr 0.05 with weight_decay 1e-4 (Chen & He 2021); 'adamw' is an
    option. `lr` is the rate for a global batch of 256 (batch_size x accumulate), scaled by
    `lr_scaling`: 'linear' (Goyal et al. 2017), 'sqrt' (You et al. 2019), or 'auto', linear from 256 up
    (where SoCo and BYOL tuned it) and sqrt below, where a linearly scaled LARS rate barely moves the
    weights. `warmup_steps` of linear warm-up, then cosine decay (SoCo). `levels` = 'size'
    pools each box at its FPN level (SoCo), 'all' at every level with one loss per level weighted by
    `level_weights` (InsLoc); `level_rule` picks a box's level by its size: 'soco' (SoCo's ranges
    48/96/192/224 px, the default: with SynthConfig's scales every level P2..P5 gets RoIs) or 'fpn'
    (Lin et al. 2017, which at 224 px sends nearly every RoI to P2 and P3), both at the largest view's
    scale. `image_weight` > 0 adds an image-level term. `objective` = 'image'
    trains that image-level term alone (no RoIs, box head untouched): the image-level BYOL baseline.
    Pairs are (view 0, view j) both ways (SoCo), or every pair with `all_pairs`. `loss` is BYOL's, or
    InfoNCE against a queue of `queue_size` momentum keys per branch at `temperature` 0.2 (MoCo). The
    target network's momentum rises from `momentum_base` to 1 on a cosine (BYOL, Grill et al. 2020); 'auto'
    picks the base for the run's length: the target keeps at most 5 % of its initial weights by the
    end, within [0.9, 0.996] (schedules.auto_momentum_base: 0.9 up to 60 steps, 0.95 at 120, 0.98 at
    300, BYOL's 0.996 from 1,500; a fixed 0.99 leaves a 120-step run's target half random).
    `health_every`: steps between the health figures in metrics.jsonl (each stage's drift, the
    target's, the embeddings' std: codo_train.health); `log_every`: steps between fetches of the figures
    from the device (each step still gets its metrics line; the steps in between never wait for the
    device, and a non-finite loss is caught at the next fetch, before any checkpoint); `tensorboard` also
    writes the metrics as TensorBoard event files (RUN/tensorboard).

    Input: `workers` DataLoader processes, kept across epochs, each `prefetch` batches ahead; on CUDA the
    batches come in page-locked memory and the next one is copied on a side stream while a step runs.
    metrics.jsonl's `data_wait` is the share of a step the host spent getting its batches (from the loader
    and, on CUDA, queueing the next copy). `compile` runs torch.compile on each encoder's backbone and FPN
    (fixed shapes; the RoI head's vary), in place, so checkpoints and exports are unchanged. With shards,
    `photometric` ('soco', 'mocov2') draws fresh colour, blur and solarize per view and epoch (for shards
    written with photometric "none"), and `decode` = 'device' leaves the loader the views' bytes and draws:
    they are decoded (nvJPEG on CUDA) and augmented on the training device, to the same pixels as on the
    CPU (codo_train.device_decode). Online, `decode` = 'device' renders the views without their [synth]
    photometric draws and applies those on the device (the loader's workers skip a quarter of rendering).
    `verify_shards` checks each shard's size and sha256 against `_info.json` as it is read (ShardDataset).
    """

    out: str = ""
    shards: str = ""
    instances: str = ""
    backgrounds: str = ""
    steps: int = 1000
    arch: str = "resnet50"
    device: str = "cpu"
    batch_size: int = 32
    accumulate: int = 1
    optimizer: str = "lars"
    lr: float = 1.0
    weight_decay: float = 1e-5
    warmup_steps: int = 10
    momentum_base: float | str = "auto"
    levels: str = "size"
    level_rule: str = "soco"
    level_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    image_weight: float = 0.0
    objective: str = "codo"
    all_pairs: bool = False
    loss: str = "byol"
    queue_size: int = 65536
    temperature: float = 0.2
    amp: str = "none"
    channels_last: bool = False
    workers: int = 0
    prefetch: int = 2
    compile: bool = False
    decode: str = "cpu"
    photometric: str = "none"
    seed: int = 0
    save_every: int = 100
    max_bad_fraction: float = 0.01
    verify_shards: bool = True
    lr_scaling: str = "auto"
    health_every: int = 20
    log_every: int = 10
    tensorboard: bool = False
    overwrite: bool = False

    def _check_inputs(self) -> None:
        """InputError unless the run has one kind of data (shards, or both online sources) and a folder."""
        online = bool(self.instances or self.backgrounds)
        if not (self.shards or online):
            raise InputError("no training data: give --shards (shards = ... in a config file), or "
                             "--instances and --backgrounds for online synthesis")
        if self.shards and online:
            raise InputError("--shards and --instances/--backgrounds are both given: train on shards or "
                             "synthesise online, not both")
        if online and not (self.instances and self.backgrounds):
            given, missing = ("instances", "backgrounds") if self.instances else ("backgrounds", "instances")
            raise InputError(f"online synthesis needs --{missing} too (only --{given} is given)")
        if not self.out:
            raise InputError("no run folder: give --out DIR (out = ... in a config file)")

    def __post_init__(self) -> None:
        self._check_inputs()
        _check(self.steps >= 1, "steps", self.steps, ">= 1")
        _check(self.arch in ARCHS, "arch", self.arch, f"one of {', '.join(ARCHS)}")
        _check(self.device == "cpu" or self.device.startswith("cuda"), "device", self.device,
               "cpu or cuda[:N]")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        _check(self.accumulate >= 1, "accumulate", self.accumulate, ">= 1")
        _check(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {', '.join(OPTIMIZERS)}")
        _check(0 < self.lr <= 100, "lr", self.lr, "in (0, 100]")
        _check(0 <= self.weight_decay < 1, "weight_decay", self.weight_decay, "in [0, 1)")
        _check(self.warmup_steps >= 0, "warmup_steps", self.warmup_steps, ">= 0")
        base = self.momentum_base
        _check(base == "auto" or isinstance(base, float) and 0 <= base < 1, "momentum_base", base,
               'in [0, 1), or "auto" (by the run\'s length)')
        _check(self.levels in LEVEL_MODES, "levels", self.levels, f"one of {', '.join(LEVEL_MODES)}")
        _check(self.level_rule in LEVEL_RULES, "level_rule", self.level_rule,
               f"one of {', '.join(LEVEL_RULES)}")
        _check(self.lr_scaling in LR_SCALINGS, "lr_scaling", self.lr_scaling,
               f"one of {', '.join(LR_SCALINGS)} (auto: linear from a batch of 256 up, square root below)")
        _check(self.health_every >= 1, "health_every", self.health_every, ">= 1")
        _check(self.log_every >= 1, "log_every", self.log_every, ">= 1")
        object.__setattr__(self, "level_weights", tuple(float(w) for w in self.level_weights))
        _check(len(self.level_weights) == 4 and min(self.level_weights) >= 0 and sum(self.level_weights) > 0,
               "level_weights", self.level_weights, "4 weights >= 0 (P2..P5), not all 0")
        _check(self.image_weight >= 0, "image_weight", self.image_weight, ">= 0 (0: no image-level term)")
        _check(self.objective in OBJECTIVES, "objective", self.objective,
               f"one of {', '.join(OBJECTIVES)} (image: image-level BYOL baseline)")
        _check(self.loss in LOSSES, "loss", self.loss, f"one of {', '.join(LOSSES)}")
        _check(self.queue_size >= 1, "queue_size", self.queue_size, ">= 1")
        _check(0 < self.temperature <= 10, "temperature", self.temperature, "in (0, 10]")
        _check(self.amp in AMP, "amp", self.amp, f"one of {', '.join(AMP)}")
        _check(not (self.amp == "fp16" and self.device == "cpu"), "amp", self.amp,
               "bf16 or none on the CPU (fp16 needs CUDA)")
        _check(self.workers >= 0, "workers", self.workers, ">= 0")
        _check(self.decode in DECODERS, "decode", self.decode, f"one of {', '.join(DECODERS)}")
        _check(self.photometric in PHOTOMETRICS, "photometric", self.photometric,
               f"one of {', '.join(PHOTOMETRICS)} (fresh draws per epoch, for shards)")
        if self.online and self.photometric != "none":
            raise InputError(f"photometric={self.photometric!r} draws fresh photometrics per epoch for "
                             "shards; with online synthesis they are a synthesis setting: pass --set "
                             f"synth.photometric={self.photometric} (or [synth] photometric in the config)")
        _check(self.prefetch >= 1, "prefetch", self.prefetch, ">= 1 (batches each loader worker reads ahead)")
        _check(self.seed >= 0, "seed", self.seed, ">= 0")
        _check(self.save_every >= 1, "save_every", self.save_every, ">= 1")
        _check(0 <= self.max_bad_fraction <= 1, "max_bad_fraction", self.max_bad_fraction,
               "in [0, 1] (the share of shard records that may fail to decode before the run stops)")

    @property
    def online(self) -> bool:
        """Whether samples are synthesised during training (CoDoDataset) rather than read from shards."""
        return bool(self.instances)

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.accumulate

    @property
    def scaled_lr(self) -> float:
        """`lr` at this run's global batch, by `lr_scaling`."""
        return scale_lr(self.lr, self.global_batch, self.lr_scaling)

    @property
    def momentum_start(self) -> float:
        """The target's momentum at step 0: `momentum_base`, or the auto rule's base for `steps`."""
        return auto_momentum_base(self.steps) if self.momentum_base == "auto" else self.momentum_base

    def to_dict(self) -> dict:
        return {**asdict(self), "scaled_lr": self.scaled_lr}

    @classmethod
    def from_run(cls, settings: dict[str, Any]) -> "TrainConfig":
        """The config a run's saved settings (a checkpoint's `config`, config.json) describe; a setting the
        run predates takes the value such runs used (BEFORE_THE_SETTING), else its default; what is not a
        setting (scaled_lr, synth, classes, shard_files) is left out, and where the run read and wrote
        stands in as '-' when the settings do not say (they describe a model, not a run to resume)."""
        names = {f.name for f in fields(cls)}
        where = {"out": "-", **({} if settings.get("instances") else {"shards": "-"})}
        saved = {k: v for k, v in settings.items() if k in names}
        return cls.from_dict({**where, **BEFORE_THE_SETTING, **saved})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """A config from plain values (TOML, --set), each type-checked against its field."""
        return build(cls, {k: v for k, v in data.items() if k != "scaled_lr"})
