"""Rules of a run's schedules, pure functions: the base rate scaled to the global batch, the rate over
the steps (linear warm-up, then cosine decay to zero), and the target momentum's base for the run's
length (the momentum schedule itself: momentum.momentum_at)."""

import math

#: The batch a base rate is quoted for (Goyal et al. 2017; SimSiam, BYOL and SoCo quote lr per 256).
REFERENCE_BATCH = 256


def scale_lr(base: float, batch: int, rule: str = "linear") -> float:
    """`base` (the rate for a batch of 256) at global batch `batch`.

    'linear': base x B/256 (Goyal et al. 2017). 'sqrt': base x sqrt(B/256) (Krizhevsky 2014; You et
    al. 2019, LAMB), which keeps the update's noise scale as B shrinks. 'auto': linear from 256 up,
    where the recipes (SoCo, BYOL) were tuned, and sqrt below, where linear scaling leaves LARS's
    trust-ratio updates too small to move the weights (codo's measurement: README, Optimisation).
    """
    ratio = batch / REFERENCE_BATCH
    if rule == "sqrt" or (rule == "auto" and ratio < 1):
        return base * math.sqrt(ratio)
    return base * ratio


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Rate for `step` (0-based) of `total`: base*(step+1)/warmup while warming up, then cosine."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


#: Bounds of the automatic base: BYOL's 0.996 for long runs (Grill et al. 2020), and 0.9 below which
#: the target would be little more than a copy of the online network.
AUTO_BASE_RANGE = (0.9, 0.996)
#: The share of its initial (random) weights the target may keep at the end of the run.
AUTO_KEPT = 0.05


def auto_momentum_base(steps: int) -> float:
    """The base for `momentum_base = "auto"`: the largest whose target keeps at most AUTO_KEPT of its
    initial weights after `steps` steps, within AUTO_BASE_RANGE.

    After K steps the target holds prod_k m_k <= exp(-sum_k (1 - m_k)) = exp(-(1 - base)(K + 1) / 2) of
    its initial weights (the cosine's (1 + cos) / 2 sums to (K + 1) / 2). BYOL's 0.996 suits runs of a
    few thousand steps; with 0.99 a run of 120 steps ends with a target still about half random.
    """
    base = 1.0 - 2.0 * math.log(1.0 / AUTO_KEPT) / (steps + 1)
    return min(max(base, AUTO_BASE_RANGE[0]), AUTO_BASE_RANGE[1])
