"""The only place codo_aug makes randomness: one generator per (seed, stream, keys...).

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


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A PCG64 generator keyed by (seed, stream, *keys); no global state is read or written."""
    if seed < 0 or stream < 0 or any(k < 0 for k in keys):
        raise ValueError(f"seed, stream and keys must be >= 0, got {seed}, {stream}, {keys}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *keys])))
