"""Draw a Recipe from (config, source sizes, seed, index, attempt): no pixels are read."""

import math

import numpy as np

from ..config import SynthConfig
from ..rng import rng_for
from .recipe import InstanceDraw, PasteDraw, Recipe, ViewDraw


def _log_uniform(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    return np.exp(rng.uniform(math.log(low), math.log(high), size))


def _f(x) -> float:
    """Plain float rounded to 6 places: short JSON, exact round trip."""
    return round(float(x), 6)


def sample_recipe(cfg: SynthConfig, num_instances: int, num_backgrounds: int,
                  seed: int, index: int, attempt: int = 0) -> Recipe:
    """The recipe of sample `index`; a new `attempt` gives an independent redraw."""
    if num_instances < 1 or num_backgrounds < 1:
        raise ValueError("sources must hold at least one instance and one background")
    rng = rng_for(seed, index, attempt)
    k = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    chosen = rng.choice(num_instances, size=k, replace=num_instances < k)
    area = rng.uniform(*cfg.rect_area, size=k)
    log_ratio = rng.uniform(math.log(cfg.rect_ratio[0]), math.log(cfg.rect_ratio[1]), size=k)
    uv = rng.random((k, 2))
    instances = tuple(
        InstanceDraw(int(chosen[s]), (_f(area[s]), _f(log_ratio[s]), _f(uv[s, 0]), _f(uv[s, 1]))) for s in range(k)
    )
    n_views = len(cfg.view_sizes)
    backgrounds = rng.choice(num_backgrounds, size=n_views, replace=num_backgrounds < n_views)
    views = []
    for size, bg in zip(cfg.view_sizes, backgrounds):
        crop = (_f(rng.uniform(*cfg.background_area)), _f(rng.random()), _f(rng.random()))
        flip = bool(rng.random() < cfg.flip_p)
        order = rng.permutation(k)
        scales = _log_uniform(rng, *cfg.scale, size=k)
        pos = rng.random((k, 2))
        pastes = tuple(PasteDraw(int(s), _f(scales[s]), _f(pos[s, 0]), _f(pos[s, 1])) for s in order)
        apply = rng.random(k) < cfg.jitter_p
        deltas = rng.uniform(-cfg.jitter_ratio, cfg.jitter_ratio, size=(k, 4))
        if cfg.jitter == "none":
            apply[:] = False
        jitter = tuple(tuple(_f(d) for d in deltas[s]) if apply[s] else (0.0, 0.0, 0.0, 0.0) for s in range(k))
        views.append(ViewDraw(int(size), int(bg), crop, flip, pastes, jitter))
    return Recipe(seed, index, attempt, instances, tuple(views))
