"""SkipLog: which files were skipped and why, counted once per path, reported deterministically."""

import logging
from collections import Counter
from dataclasses import dataclass, field

from .decode import BadImage

log = logging.getLogger("codo_aug.sources")
EXAMPLES = 3


@dataclass
class SkipLog:
    """Skipped paths with their reason (the first one seen); counts and examples derive from it."""

    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, bad: BadImage, warn: bool = True) -> None:
        """Record `bad` once per path; log it (INFO) unless it is a routine filter (`warn=False`, e.g. COCO crowds)."""
        if bad.path in self.reasons:
            return
        self.reasons[bad.path] = bad.reason
        if warn:
            log.info("skipped %s", bad)

    def merge(self, reasons: dict[str, str]) -> None:
        """Add the path -> reason records of another log (e.g. from a worker process)."""
        for path, reason in reasons.items():
            self.reasons.setdefault(path, reason)

    @property
    def counts(self) -> Counter:
        return Counter(self.reasons.values())

    @property
    def total(self) -> int:
        return len(self.reasons)

    def summary(self) -> str:
        if not self.total:
            return "0 skipped"
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"{self.total} skipped ({parts})"

    def to_dict(self) -> dict:
        """Totals, counts by reason and the first paths (sorted) of each: the same in any process order."""
        examples: dict[str, list[str]] = {}
        for path in sorted(self.reasons):
            bucket = examples.setdefault(self.reasons[path], [])
            if len(bucket) < EXAMPLES:
                bucket.append(path)
        return {"total": self.total, "by_reason": dict(sorted(self.counts.items())), "examples": dict(sorted(examples.items()))}
