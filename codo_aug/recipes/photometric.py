"""Photometric policies and their sampler: which colour, blur and solarize draws each view gets."""

from dataclasses import dataclass

import numpy as np

from .draws import rounded as _f
from .recipe import PhotoDraw

#: Blur sigmas are drawn for a 224-pixel view and scaled with the view size.
REFERENCE_SIZE = 224


@dataclass(frozen=True)
class PhotoPolicy:
    """Probabilities and strengths of one view's photometric augmentation (torchvision semantics)."""

    strength: tuple[float, float, float, float]  # brightness, contrast, saturation, hue
    jitter_p: float
    gray_p: float
    blur_p: float
    solarize_p: float
    sigma: tuple[float, float] = (0.1, 2.0)


_BYOL_JITTER = (0.4, 0.4, 0.2, 0.1)
#: SoCo uses BYOL's asymmetric pair (Grill et al. 2020, table 6): colour jitter p0.8 and greyscale
#: p0.2 in every view; blur always in view 0, p0.1 elsewhere, where solarize p0.2 joins.
SOCO_FIRST = PhotoPolicy(_BYOL_JITTER, 0.8, 0.2, 1.0, 0.0)
SOCO_OTHER = PhotoPolicy(_BYOL_JITTER, 0.8, 0.2, 0.1, 0.2)
#: InsLoc uses MoCo-v2's policy in every view (Chen et al. 2020): jitter 0.4/0.4/0.4/0.1 p0.8,
#: greyscale p0.2, blur p0.5.
MOCOV2 = PhotoPolicy((0.4, 0.4, 0.4, 0.1), 0.8, 0.2, 0.5, 0.0)


@dataclass(frozen=True)
class PerView:
    """A photometric mode's draw (its row in codo_aug.modes.PHOTOMETRICS): view j follows
    `policies[j]`, views past the end the last one; no policy at all (the identity) for ()."""

    policies: tuple[PhotoPolicy, ...] = ()

    def policy(self, view: int) -> PhotoPolicy | None:
        return self.policies[min(view, len(self.policies) - 1)] if self.policies else None

    def __call__(self, rng: np.random.Generator, view: int, size: int) -> PhotoDraw:
        """View `view`'s draws for a `size`-pixel view."""
        return sample_photo(rng, self.policy(view), size)


def policy_for(name: str, view: int) -> PhotoPolicy | None:
    """The policy of view `view` under photometric mode `name` (None: the identity)."""
    from ..modes import PHOTOMETRICS  # the table is built from this module's policies

    return PHOTOMETRICS[name].draw.policy(view)


def sample_photo(rng: np.random.Generator, policy: PhotoPolicy | None, size: int) -> PhotoDraw:
    """Draw one view's photometric parameters; the identity for no policy."""
    if policy is None:
        return PhotoDraw()
    b, c, s, h = policy.strength
    factors = (rng.uniform(1 - b, 1 + b), rng.uniform(1 - c, 1 + c), rng.uniform(1 - s, 1 + s),
               rng.uniform(-h, h))
    order = tuple(int(i) for i in rng.permutation(4))
    jitter = rng.random() < policy.jitter_p
    gray = bool(rng.random() < policy.gray_p)
    blur = rng.random() < policy.blur_p
    sigma = rng.uniform(*policy.sigma) * size / REFERENCE_SIZE
    solarize = bool(rng.random() < policy.solarize_p)
    colour = dict(zip(("brightness", "contrast", "saturation", "hue"), map(_f, factors))) if jitter else {}
    return PhotoDraw(**colour, order=order, grayscale=gray, blur_sigma=_f(sigma) if blur else 0.0,
                     solarize=solarize)
