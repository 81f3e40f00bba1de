"""The fine-tuning learning rate: linear warm-up times a decay schedule, pure functions of the iteration.

detectron2's 1x schedule (configs/Base-RCNN-FPN.yaml: 90k iterations, STEPS 60k and 80k, GAMMA 0.1)
is the `step` shape: x0.1 at 2/3 and again at 8/9 of the run. `cosine` decays to 0 over the whole
run, as detectron2's WarmupCosineLR does.
"""

from ..schedules import lr_at

#: Where the rate drops, as fractions (numerator, denominator) of the run: detectron2's 60k/90k, 80k/90k.
STEP_MILESTONES = ((2, 3), (8, 9))
#: The drop at each milestone (detectron2's SOLVER.GAMMA).
STEP_GAMMA = 0.1
#: Warm-up iterations at most; detectron2 warms up over 1,000 of 90k, runs here are far shorter.
MAX_WARMUP = 100


def milestone(iters: int, numerator: int, denominator: int) -> int:
    """The 0-based iteration where a drop at `numerator/denominator` of `iters` starts: the fraction
    rounded up, so a run of one iteration keeps its rate."""
    return (iters * numerator + denominator - 1) // denominator


def step_decay(it: int, iters: int) -> float:
    """1 before 2/3 of the run, 0.1 from there, 0.01 from 8/9 on (`it` 0-based)."""
    return STEP_GAMMA ** sum(it >= milestone(iters, n, d) for n, d in STEP_MILESTONES)


def cosine_decay(it: int, iters: int) -> float:
    """Half a cosine from 1 at the first iteration towards 0 at the end."""
    return lr_at(it, iters, 1.0, 0)


#: Schedule name -> decay factor of (iteration, iterations).
SCHEDULES = {"step": step_decay, "cosine": cosine_decay}


def warmup_iters(iters: int) -> int:
    """A fifth of the run, at most MAX_WARMUP iterations, at least one."""
    return max(1, min(MAX_WARMUP, iters // 5))


def finetune_lr(it: int, iters: int, base: float, schedule: str) -> float:
    """The rate of iteration `it` (0-based) of `iters`: `base` x linear warm-up x the schedule's decay."""
    return base * min(1.0, (it + 1) / warmup_iters(iters)) * SCHEDULES[schedule](it, iters)
