"""Draw a Recipe from (config, source sizes, seed, index, attempt): no pixels are read."""

import math

import numpy as np

from ..config import SynthConfig
from ..rng import RECIPE_STREAM, rng_for
from .photometric import policy_for, sample_photo
from .recipe import InstanceDraw, PasteDraw, Recipe, ViewDraw

_NO_JITTER = (0.0, 0.0, 0.0, 0.0)


def _f(x) -> float:
    """Plain float rounded to 6 places: short JSON, exact round trip."""
    return round(float(x), 6)


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


def _blend(rng: np.random.Generator, cfg: SynthConfig) -> tuple[str, tuple[float, ...]]:
    weights = np.asarray(cfg.blend_weights, dtype=np.float64)
    mode = cfg.blend[int(rng.choice(len(cfg.blend), p=weights / weights.sum()))]
    if mode == "gaussian":
        return mode, (_f(rng.uniform(*cfg.feather_sigma)),)
    if mode == "motion":
        return mode, (_f(rng.uniform(*cfg.motion_length)), _f(rng.uniform(0.0, 180.0)))
    return mode, ()


def _jitter(rng: np.random.Generator, cfg: SynthConfig, mode: str) -> tuple[float, float, float, float]:
    """Four draws for one RoI: relative deltas, or iou (area, split, left, top) fractions in [0, 1)."""
    if mode == "none" or rng.random() >= cfg.jitter_p:
        return _NO_JITTER
    if mode == "relative":
        return tuple(_f(d) for d in rng.uniform(-cfg.jitter_ratio, cfg.jitter_ratio, 4))
    return tuple(_f(d) for d in rng.random(4))


def sample_recipe(cfg: SynthConfig, num_instances: int, num_backgrounds: int,
                  seed: int, index: int, attempt: int = 0) -> Recipe:
    """The recipe of sample `index`; a new `attempt` gives an independent redraw."""
    if num_instances < 1 or num_backgrounds < 1:
        raise ValueError("sources must hold at least one instance and one background")
    rng = rng_for(seed, RECIPE_STREAM, index, attempt)
    k = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    chosen = rng.choice(num_instances, size=k, replace=num_instances < k)
    lr_low, lr_high = math.log(cfg.rect_ratio[0]), math.log(cfg.rect_ratio[1])
    instances = tuple(
        InstanceDraw(int(c), (_f(rng.uniform(*cfg.rect_area)), _f(rng.uniform(lr_low, lr_high)),
                              _f(rng.random()), _f(rng.random())))
        for c in chosen
    )
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
            pastes.append(PasteDraw(int(s), _f(scales[s]), _f(u), _f(v), mode, args))
        jitter_mode = cfg.jitter_mode(j)
        jitter = tuple(_jitter(rng, cfg, jitter_mode) for _ in range(k))
        photo = sample_photo(rng, policy_for(cfg.photometric, j), int(size))
        views.append(ViewDraw(int(size), int(bg), crop, flip, tuple(pastes), jitter_mode, jitter, photo))
    return Recipe(seed, index, attempt, instances, tuple(views))
