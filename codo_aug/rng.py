"""The only place codo_aug makes randomness: one generator per (seed, stream, numbers...).

A sample's random choices depend on nothing but these numbers, so sample *i* is the same
whether made online or offline, in one process or many.
"""

import numpy as np

#: Stream ids keep independent uses of one seed apart: (RECIPE, index, attempt), (SHARD_ORDER, epoch),
#: (SHUFFLE, epoch, slot), (PHOTO, epoch, index).
RECIPE_STREAM = 0
SHARD_ORDER_STREAM = 1
SHUFFLE_STREAM = 2
PHOTO_STREAM = 3


def rng_for(seed: int, stream: int, *numbers: int) -> np.random.Generator:
    """A PCG64 generator of (seed, stream, *numbers) (an index, an attempt, an epoch); no global state is read
    or written."""
    if seed < 0 or stream < 0 or any(n < 0 for n in numbers):
        raise ValueError(f"seed, stream and numbers must be >= 0, got {seed}, {stream}, {numbers}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *numbers])))
