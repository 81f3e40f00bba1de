"""Substitute files: when a source item's file fails to decode, the next usable item stands in for it.

Whether a file decodes depends on the file alone (a cutout too small, on the draw too), so the substitute
is the same in every process. A `Tried` remembers what this process learnt of a source's files: it saves
decoding and changes no choice.
"""

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import InputError
from .sources.base import Source
from .sources.decode import DRAW_FAULTS, BadImage
from .sources.skips import SkipLog


@dataclass
class Tried:
    """What this process learnt of one source's files: items that failed (not tried again) and items that
    decoded (a layout takes a background known to decode without decoding it)."""

    broken: set[int] = field(default_factory=set)
    sound: set[int] = field(default_factory=set)


def first_good(source: Source, start: int, load: Callable[[int], np.ndarray], tried: Tried,
               skips: SkipLog) -> tuple[int, np.ndarray]:
    """(item, `load(item)`) for item `start`, or the next items in turn when it fails (each failure
    counted in `skips`); InputError when no item of `source` loads."""
    n = len(source)
    for step in range(n):
        i = (start + step) % n
        if i in tried.broken:
            continue
        try:
            pixels = load(i)
        except BadImage as bad:
            skips.add(bad)
            if bad.reason not in DRAW_FAULTS:
                tried.broken.add(i)
            continue
        tried.sound.add(i)
        return i, pixels
    failed = SkipLog(dict(source.skipped.reasons))  # what the scan refused, and what failed here
    failed.merge({p: r for p, r in skips.reasons.items() if p.startswith(str(source.root))})
    raise InputError(f"no item of the {source.role} source ({source.kind}) could be used: {failed.summary()}")
