"""SynthConfig: every fixed setting of the synthesis engine, validated where it is built."""

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from .errors import InputError
from .modes import BLENDS, JITTERS, PHOTOMETRICS
from .settings import build
from .settings import require as _check

CUTOUTS = ("auto", "rect", "box", "grabcut")
VIEW_CROPS = ("auto", "on", "off")
#: Settings renamed since: {old name: name}. Files, --set and stored configs may still use the old name.
RENAMED = {"instances": "instances_per_sample"}


def _check_range(name: str, pair, low: float, high: float) -> None:
    _check(len(pair) == 2 and low <= pair[0] <= pair[1] <= high, name, pair,
           f"a pair [a, b] with {low} <= a <= b <= {high}")


def _check_modes(name: str, modes: tuple, allowed: Collection[str]) -> None:
    _check(len(modes) >= 1 and all(m in allowed for m in modes), name, modes, f"made of {', '.join(allowed)}")


@dataclass(frozen=True)
class SynthConfig:
    """How instances become multi-view samples (DESIGN.md section 1).

    Defaults: views 224/224/112 and relative box jitter (x1, y1, w, h each moved by U(-0.1, 0.1)
    of the size with probability 0.5) and the asymmetric BYOL photometrics, as in SoCo (Wei et al.
    2021); rect cutouts with area U(0.2, 1) and aspect log-U[0.5, 2] as in InsLoc (Yang et al. 2021);
    hard and Gaussian-feathered blending from Cut, Paste and Learn (Dwibedi et al. 2017).
    `scale` (an instance's longer side / view size, log-uniform) spans 0.3 (SoCo's smallest
    proposals, 0.3 of the image) to 1.6: above 1 the instance is larger than the view, which shows
    a part of it cut by its edges, as SoCo's proposals are clipped to its random-resized crops.
    With SoCo's level ranges this sends at least 10 % of the RoIs to each of P2..P5 on real cutouts
    (the 112-px view never reaches P5, and P5 wants an object >= 86 % of a 224-px view).
    `view_crop` draws, per view and instance, InsLoc's independent crop of the cutout (area
    U(0.2, 1), aspect log-U[3/4, 4/3]; alpha and mask cropped with it), so views show different
    parts of the object: 'auto' crops the cutouts that are filled rectangles (random rects, xml
    boxes), whose pixels would otherwise be the same in every view, and leaves masked objects whole.
    `jitter` holds one mode for all views or one per view. Backgrounds narrower than
    `min_background_side` are skipped and counted. When a sample asks for more instances than the
    pool holds, it takes fewer, unless `repeat_instances` pastes repeats (sharing one id).
    `balance_classes` draws a class uniformly, then an instance of it (else every instance alike).
    """

    view_sizes: tuple[int, ...] = (224, 224, 112)
    instances_per_sample: tuple[int, int] = (1, 2)
    scale: tuple[float, float] = (0.3, 1.6)
    max_truncation: float = 0.0
    background_area: tuple[float, float] = (0.3, 1.0)
    cutout: str = "auto"
    rect_area: tuple[float, float] = (0.2, 1.0)
    rect_ratio: tuple[float, float] = (0.5, 2.0)
    view_crop: str = "auto"
    view_crop_area: tuple[float, float] = (0.2, 1.0)
    view_crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    min_instance_side: int = 8
    min_background_side: int = 32
    repeat_instances: bool = False
    balance_classes: bool = False
    min_visibility: float = 0.3
    blend: tuple[str, ...] = ("hard", "gaussian")
    blend_weights: tuple[float, ...] = (0.5, 0.5)
    feather_sigma: tuple[float, float] = (0.5, 2.0)
    motion_length: tuple[float, float] = (3.0, 9.0)
    flip_p: float = 0.5
    jitter: tuple[str, ...] = ("relative",)
    jitter_ratio: float = 0.1
    jitter_p: float = 0.5
    iou_floor: float = 0.5
    photometric: str = "soco"
    jpeg_quality: int = 95
    max_attempts: int = 20

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, list) or (name in ("jitter", "blend") and isinstance(value, str)):
                object.__setattr__(self, name, tuple(value) if isinstance(value, list) else (value,))
        n_views = len(self.view_sizes)
        _check(n_views >= 2 and all(16 <= s <= 4096 for s in self.view_sizes),
               "view_sizes", self.view_sizes, "two or more sizes, each in 16..4096")
        per_sample = self.instances_per_sample
        _check(len(per_sample) == 2 and 1 <= per_sample[0] <= per_sample[1] <= 16,
               "instances_per_sample", per_sample, "a pair [a, b] with 1 <= a <= b <= 16")
        _check_range("scale", self.scale, 0.05, 2.0)
        _check(0.0 <= self.max_truncation <= 0.5, "max_truncation", self.max_truncation, "in 0..0.5")
        _check_range("background_area", self.background_area, 0.05, 1.0)
        _check(self.cutout in CUTOUTS, "cutout", self.cutout, f"one of {', '.join(CUTOUTS)}")
        _check_range("rect_area", self.rect_area, 0.05, 1.0)
        _check_range("rect_ratio", self.rect_ratio, 0.1, 10.0)
        _check(self.view_crop in VIEW_CROPS, "view_crop", self.view_crop, f"one of {', '.join(VIEW_CROPS)}")
        _check_range("view_crop_area", self.view_crop_area, 0.05, 1.0)
        _check_range("view_crop_ratio", self.view_crop_ratio, 0.1, 10.0)
        _check(1 <= self.min_instance_side <= 1024, "min_instance_side", self.min_instance_side, "in 1..1024")
        _check(1 <= self.min_background_side <= 4096, "min_background_side", self.min_background_side,
               "in 1..4096")
        _check(0.0 <= self.min_visibility <= 1.0, "min_visibility", self.min_visibility, "in 0..1")
        _check_modes("blend", self.blend, BLENDS)
        _check(len(self.blend_weights) == len(self.blend) and all(w >= 0 for w in self.blend_weights)
               and sum(self.blend_weights) > 0, "blend_weights", self.blend_weights,
               "one weight >= 0 per blend mode, not all 0")
        _check_range("feather_sigma", self.feather_sigma, 0.1, 20.0)
        _check_range("motion_length", self.motion_length, 1.0, 50.0)
        _check(0.0 <= self.flip_p <= 1.0, "flip_p", self.flip_p, "in 0..1")
        _check_modes("jitter", self.jitter, JITTERS)
        _check(len(self.jitter) in (1, n_views), "jitter", self.jitter,
               f"one mode, or one per view ({n_views})")
        _check(0.0 <= self.jitter_ratio <= 0.5, "jitter_ratio", self.jitter_ratio, "in 0..0.5")
        _check(0.0 <= self.jitter_p <= 1.0, "jitter_p", self.jitter_p, "in 0..1")
        _check(0.1 <= self.iou_floor <= 1.0, "iou_floor", self.iou_floor, "in 0.1..1")
        _check(self.photometric in PHOTOMETRICS, "photometric", self.photometric,
               f"one of {', '.join(PHOTOMETRICS)}")
        _check(1 <= self.jpeg_quality <= 100, "jpeg_quality", self.jpeg_quality, "in 1..100")
        _check(1 <= self.max_attempts <= 1000, "max_attempts", self.max_attempts, "in 1..1000")

    def jitter_mode(self, view: int) -> str:
        """The RoI jitter mode of view `view`."""
        return self.jitter[0] if len(self.jitter) == 1 else self.jitter[view]

    def crops_views(self, rectangular: bool) -> bool:
        """Whether each view draws its own crop of an instance whose cutout is (or is not) a filled
        rectangle (Source.rectangular)."""
        return self.view_crop == "on" or (self.view_crop == "auto" and rectangular)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def upgrade(data: dict[str, Any]) -> dict[str, Any]:
        """`data` (a TOML table, --set values, a stored config) with each setting under its name of today
        (RENAMED); InputError where both names are given."""
        both = [old for old, new in RENAMED.items() if old in data and new in data]
        if both:
            raise InputError(f"{both[0]} and {RENAMED[both[0]]} are one setting ({both[0]} is its old name); "
                             f"give {RENAMED[both[0]]} alone")
        return {RENAMED.get(k, k): v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SynthConfig":
        """A config from plain values (e.g. a TOML table; old setting names too), each type-checked against
        its field."""
        return build(cls, cls.upgrade(data))
