"""Draw a Recipe from (config, source sizes and classes, seed, index, attempt): no pixels are read."""

import bisect
import functools
import math
from collections.abc import Sequence

import numpy as np

from ..config import SynthConfig
from ..modes import BLENDS, JITTERS, PHOTOMETRICS
from ..rng import RECIPE_STREAM, rng_for
from .draws import rounded as _f
from .recipe import InstanceDraw, PasteDraw, Recipe, ViewDraw


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


@functools.lru_cache(maxsize=64)
def _cdf(weights: tuple[float, ...]) -> np.ndarray:
    """The cumulative distribution Generator.choice builds from `weights` (normalised twice, as it does)."""
    p = np.asarray(weights, dtype=np.float64)
    cdf = (p / p.sum()).cumsum()
    return cdf / cdf[-1]


def _pick(rng: np.random.Generator, weights: tuple[float, ...]) -> int:
    """rng.choice(len(weights), p=normalised weights), drawn the same way (one uniform against the
    cumulative sum, so the stream is unchanged) without choice's per-call checks (~40 us)."""
    return int(_cdf(weights).searchsorted(rng.random(), side="right"))


def _blend(rng: np.random.Generator, cfg: SynthConfig) -> tuple[str, tuple[float, ...]]:
    """A blend mode by its weight, and its draw."""
    mode = cfg.blend[_pick(rng, tuple(cfg.blend_weights))]
    return mode, BLENDS[mode].draw(rng, cfg)


def _crop(rng: np.random.Generator, area: tuple[float, float], ratio: tuple[float, float]
          ) -> tuple[float, float, float, float]:
    """An InsLoc-style crop (area U(area), log aspect U(log ratio), position u, v U(0, 1))."""
    return (_f(rng.uniform(*area)), _f(rng.uniform(math.log(ratio[0]), math.log(ratio[1]))),
            _f(rng.random()), _f(rng.random()))


def class_members(labels: Sequence[str]) -> list[np.ndarray]:
    """Instance indices of each class (classes in name order): what `balance_classes` draws from."""
    names = sorted(set(labels))
    order = {name: c for c, name in enumerate(names)}
    members: list[list[int]] = [[] for _ in names]
    for i, label in enumerate(labels):
        members[order[label]].append(i)
    return [np.asarray(m, dtype=np.int64) for m in members]


def _balanced(rng: np.random.Generator, classes: Sequence[np.ndarray], k: int) -> list[int]:
    """k distinct instances, each from a class drawn uniformly among those with instances left.

    The j-th untaken member of a class is found by stepping over its taken positions (kept sorted),
    so a draw costs O(k) whatever the class sizes.
    """
    open_classes = list(range(len(classes)))
    taken: dict[int, list[int]] = {}
    picks = []
    for _ in range(k):
        c = open_classes[int(rng.integers(len(open_classes)))]
        skip = taken.setdefault(c, [])
        j = int(rng.integers(len(classes[c]) - len(skip)))
        for p in skip:
            j += p <= j
        bisect.insort(skip, j)
        picks.append(int(classes[c][j]))
        if len(skip) == len(classes[c]):
            open_classes.remove(c)
    return picks


def _instances(rng: np.random.Generator, cfg: SynthConfig, k: int, num_instances: int,
               classes: Sequence[np.ndarray] | None) -> tuple[InstanceDraw, ...]:
    """k instance slots, distinct while the pool lasts; past it, with `repeat_instances`, copies of
    drawn slots (the same instance and rect, so they share one id), else fewer slots."""
    unique = min(k, num_instances)
    if cfg.balance_classes:
        if classes is None:
            raise ValueError("balance_classes needs the instance classes (class_members of the labels)")
        chosen = _balanced(rng, classes, unique)
    else:
        chosen = rng.choice(num_instances, size=unique, replace=False)
    drawn = tuple(InstanceDraw(int(c), _crop(rng, cfg.rect_area, cfg.rect_ratio)) for c in chosen)
    if not cfg.repeat_instances or unique == k:
        return drawn
    return drawn + tuple(drawn[int(r)] for r in rng.integers(unique, size=k - unique))


def sample_recipe(cfg: SynthConfig, num_instances: int, num_backgrounds: int, seed: int, index: int,
                  attempt: int = 0, classes: Sequence[np.ndarray] | None = None,
                  rectangular: Sequence[bool] | None = None) -> Recipe:
    """The recipe of sample `index`; a new `attempt` gives an independent redraw.

    `classes` (from `class_members`) is needed with `balance_classes` only. `rectangular` says per
    instance whether its cutout is a filled rectangle (Source.rectangular): what `view_crop` 'auto'
    crops in each view (None: no instance is). Pastes without a view crop draw nothing for it.
    """
    if num_instances < 1 or num_backgrounds < 1:
        raise ValueError("sources must hold at least one instance and one background")
    rng = rng_for(seed, RECIPE_STREAM, index, attempt)
    wanted = int(rng.integers(cfg.instances_per_sample[0], cfg.instances_per_sample[1] + 1))
    instances = _instances(rng, cfg, wanted, num_instances, classes)
    k = len(instances)
    cropped = [cfg.crops_views(bool(rectangular is not None and rectangular[d.source])) for d in instances]
    n_views = len(cfg.view_sizes)
    backgrounds = rng.choice(num_backgrounds, size=n_views, replace=num_backgrounds < n_views)
    views = []
    for j, (size, bg) in enumerate(zip(cfg.view_sizes, backgrounds)):
        crop = (_f(rng.uniform(*cfg.background_area)), _f(rng.random()), _f(rng.random()))
        flip = bool(rng.random() < cfg.flip_p)
        scales = _log_uniform(rng, *cfg.scale, size=k)
        pastes = []
        for s in rng.permutation(k):
            u, v = rng.random(2)
            mode, args = _blend(rng, cfg)
            part = _crop(rng, cfg.view_crop_area, cfg.view_crop_ratio) if cropped[s] else ()
            pastes.append(PasteDraw(int(s), _f(scales[s]), _f(u), _f(v), mode, args, part))
        jitter_mode = cfg.jitter_mode(j)
        jitter = tuple(JITTERS[jitter_mode].draw(rng, cfg) for _ in range(k))
        photo = PHOTOMETRICS[cfg.photometric].draw(rng, j, int(size))
        views.append(ViewDraw(int(size), int(bg), crop, flip, tuple(pastes), jitter_mode, jitter, photo))
    return Recipe(seed, index, attempt, instances, tuple(views))
