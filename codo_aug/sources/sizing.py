"""SizeRule: how far `codo-aug prepare` may shrink an item, so no view of the config ever asks for more
pixels than the stored item holds (a sample from the store differs from one from the files only by
that resize)."""

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Callable

from ..config import SynthConfig
from ..geometry.placement import crop_rect
from ..recipes.recipe import Recipe

#: Slack for float products such as (w * need / w) landing just above a whole number before ceil.
_EPS = 1e-9
#: One crop of a chain: its smallest area share and its aspect range.
Stage = tuple[float, tuple[float, float]]


def crop_size(width: float, height: float, area: float, ratio: float) -> tuple[float, float]:
    """(w, h) of geometry.placement.crop_rect's crop of `area` and aspect `ratio` in a `width` x `height`
    image, before rounding: the crop shrunk (aspect kept) until it fits."""
    w = min(math.sqrt(area * width * height * ratio), width, height * ratio)
    return w, w / ratio


def _aspects(ratio: tuple[float, float]) -> tuple[float, ...]:
    """The aspects at which a crop's longer side is smallest over the range `ratio`: its ends, and 1
    inside it (the crop's sides are concave in log aspect, so a minimum lies at one of these)."""
    return ratio + ((1.0,) if ratio[0] < 1.0 < ratio[1] else ())


def least_longest(width: float, height: float, stages: tuple[Stage, ...]) -> float:
    """The smallest longer side of a `width` x `height` image cut by crop_rect once per stage (area, ratio
    range) in turn, over every draw: each stage at its smallest area and at each aspect of `_aspects`."""
    least = math.inf
    for aspects in itertools.product(*(_aspects(ratio) for _, ratio in stages)):
        w, h = width, height
        for (area, _), aspect in zip(stages, aspects):
            w, h = crop_size(w, h, area, aspect)
        least = min(least, max(w, h))
    return least


@dataclass(frozen=True)
class SizeRule:
    """The largest view side `view`, the smallest background crop share `background_area`, the largest
    pasted side `paste` (view * scale[1]), the smallest per-view crop share `view_crop_area` and random
    rect share `rect_area` and their aspect ranges; `max_side` (when set) replaces the rule: longer sides
    at most that."""

    view: int
    background_area: float
    paste: float
    view_crop_area: float
    rect_area: float
    view_crop_ratio: tuple[float, float]
    rect_ratio: tuple[float, float]
    max_side: int | None = None

    @classmethod
    def from_config(cls, config: SynthConfig, max_side: int | None = None) -> "SizeRule":
        view = max(config.view_sizes)
        return cls(view, config.background_area[0], view * config.scale[1], config.view_crop_area[0],
                   config.rect_area[0], tuple(config.view_crop_ratio), tuple(config.rect_ratio), max_side)

    def background_scale(self, width: int, height: int) -> float:
        """Scale (<= 1) of a `width` x `height` background: its smallest square crop
        (side min(sqrt(background_area * w * h), w, h), as the view draw makes it) keeps `view` pixels."""
        if self.max_side is not None:
            return min(1.0, self.max_side / max(width, height))
        side = min(math.sqrt(self.background_area * width * height), width, height)
        return min(1.0, self.view / side)

    def instance_scale(self, width: int, height: int, crops: bool, whole: bool) -> float:
        """Scale (<= 1) of a `width` x `height` cutout (or `whole` image cut by a random rect at use) whose
        smallest crop over every draw (least_longest of the random rect when `whole`, then a per-view crop
        when `crops`) still has a longer side of the largest paste. A `whole` image's rect is placed on the
        original size and scaled to the stored one, so its sides may come out 1 px short: the target is
        1 px longer (times the view crop's largest aspect, which carries that into its longer side)."""
        if self.max_side is not None:
            return min(1.0, self.max_side / max(width, height))
        rect: tuple[Stage, ...] = ((self.rect_area, self.rect_ratio),) if whole else ()
        view: tuple[Stage, ...] = ((self.view_crop_area, self.view_crop_ratio),) if crops else ()
        slack = whole * (max(self.view_crop_ratio[1], 1 / self.view_crop_ratio[0]) if crops else 1.0)
        return min(1.0, (self.paste + slack) / least_longest(width, height, rect + view))

    def to_dict(self) -> dict:
        """As JSON holds it (pairs as lists), so that a job file read back compares equal."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(w, h) of a `width` x `height` image shrunk by `scale`, rounded up (never below what is needed,
    never above the original)."""
    return (min(width, max(1, math.ceil(width * scale - _EPS))),
            min(height, max(1, math.ceil(height * scale - _EPS))))


@dataclass(frozen=True)
class CutNeed:
    """What one sample's pastes of an instance ask of its cut: each paste's longer side in view pixels
    with its per-view crop (area, log_ratio, u, v), or () when it shows the whole cut."""

    pastes: tuple[tuple[int, tuple[float, ...]], ...]

    def longest(self, width: int, height: int) -> int:
        """The longer side a `width` x `height` cut needs for every paste to be a downscale or 1:1: a paste
        of longer side L showing a crop whose longer side is c of the cut's M needs L * M / c. The crop
        is crop_rect's own (its aspect and its shrink to fit the cut included), so any cut shape is exact."""
        whole = max(width, height)
        return max((math.ceil(side * whole / max(crop_rect(width, height, *crop)[2:] if crop else (whole,))
                              - _EPS) for side, crop in self.pastes), default=1)

    def draft(self, region: Callable[[int, int], tuple[int, int]]) -> Callable[[int, int], tuple[int, int]]:
        """decode's draft for a cut taking `region(w, h)` = its (width, height) of a w x h image: the least
        image size whose region still has `longest` pixels on its longer side."""
        def least(w: int, h: int) -> tuple[int, int]:
            rw, rh = region(w, h)
            return scaled_size(w, h, self.longest(rw, rh) / max(rw, rh))

        return least


def cut_needs(recipe: Recipe) -> list[CutNeed]:
    """Per instance slot of `recipe`, the CutNeed of its pastes in all views (known before decoding)."""
    pastes: list[list[tuple[int, tuple[float, ...]]]] = [[] for _ in recipe.instances]
    for view in recipe.views:
        for p in view.pastes:
            pastes[p.slot].append((max(1, round(p.scale * view.size)), p.crop))
    return [CutNeed(tuple(slot)) for slot in pastes]
