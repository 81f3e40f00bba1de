"""The only place codo_aug makes randomness: one generator per (seed, index, stream).

A sample's random choices depend on nothing but these numbers, so sample *i* is the same
whether made online or offline, in one process or many.
"""

import numpy as np

#: Stream ids keep independent uses of one (seed, index) apart.
RECIPE_STREAM = 0


def rng_for(seed: int, index: int, stream: int = RECIPE_STREAM) -> np.random.Generator:
    """A PCG64 generator keyed by (seed, index, stream); no global state is read or written."""
    if seed < 0 or index < 0 or stream < 0:
        raise ValueError(f"seed, index and stream must be >= 0, got {seed}, {index}, {stream}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, stream])))
