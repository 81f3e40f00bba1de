"""The draws of each blend and RoI jitter mode (the `draw` of their rows in codo_aug.modes).

Each is `(rng, config) -> plain floats` for the recipe, rounded by `rounded`; a mode's kernel reads them
back. Draws consume the generator in a fixed order: the recipe of a seed depends on it.
"""

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the config imports the mode tables, which import these draws
    from ..config import SynthConfig

#: The jitter draws of a RoI left as its box.
NO_JITTER = (0.0, 0.0, 0.0, 0.0)


def rounded(x) -> float:
    """Plain float rounded to 6 places: short JSON, exact round trip."""
    return round(float(x), 6)


def no_args(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, ...]:
    """A blend without parameters (hard, poisson): draws nothing."""
    return ()


def feather(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, ...]:
    """(sigma,) of the Gaussian feather, U(feather_sigma)."""
    return (rounded(rng.uniform(*cfg.feather_sigma)),)


def motion(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, ...]:
    """(length, angle in degrees) of the motion smear: U(motion_length), U(0, 180)."""
    return rounded(rng.uniform(*cfg.motion_length)), rounded(rng.uniform(0.0, 180.0))


def keep_box(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, float, float, float]:
    """Jitter 'none': draws nothing."""
    return NO_JITTER


def _with_p(rng: np.random.Generator, cfg: "SynthConfig", draw) -> tuple[float, float, float, float]:
    """`draw()`'s four values with probability jitter_p, else NO_JITTER."""
    if rng.random() >= cfg.jitter_p:
        return NO_JITTER
    return tuple(rounded(d) for d in draw())


def relative(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, float, float, float]:
    """SoCo's deltas (dx1, dy1, dw, dh), each U(-jitter_ratio, jitter_ratio), with probability jitter_p."""
    return _with_p(rng, cfg, lambda: rng.uniform(-cfg.jitter_ratio, cfg.jitter_ratio, 4))


def iou(rng: np.random.Generator, cfg: "SynthConfig") -> tuple[float, float, float, float]:
    """(area, split, left, top) fractions U(0, 1) of an IoU-floored RoI, with probability jitter_p."""
    return _with_p(rng, cfg, lambda: rng.random(4))
