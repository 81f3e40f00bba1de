"""Learning-rate schedule: linear warm-up, then cosine decay to zero (pure function)."""

import math


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Rate for `step` (0-based) of `total`: base*(step+1)/warmup while warming up, then cosine."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))
