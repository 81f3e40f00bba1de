"""SkipLog: which files and annotations were skipped and why, counted once each, reported
deterministically."""

import logging
from collections import Counter
from dataclasses import dataclass, field

from ..plural import plural
from .decode import BadImage

log = logging.getLogger("codo_aug.sources")
EXAMPLES = 3
#: Annotation skips are keyed `<json name>#annotation-<id>`; every other key is a file path.
ANNOTATION_MARK = "#annotation-"


def annotation_key(json_name: str, ann_id) -> str:
    """The SkipLog key of one annotation of a COCO json."""
    return f"{json_name}{ANNOTATION_MARK}{ann_id}"


def _reasons(counts: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


@dataclass
class SkipLog:
    """Skipped files and annotations with their reason (the first one seen); counts and examples
    derive from it."""

    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, bad: BadImage, warn: bool = True) -> None:
        """Record `bad` once per key; log it (INFO) unless it is a routine filter (`warn=False`, e.g.
        COCO crowds)."""
        if bad.path in self.reasons:
            return
        self.reasons[bad.path] = bad.reason
        if warn:
            log.info("skipped %s", bad)

    def merge(self, reasons: dict[str, str]) -> None:
        """Add the key -> reason records of another log (e.g. from a worker process)."""
        for path, reason in reasons.items():
            self.reasons.setdefault(path, reason)

    def _counts(self, annotations: bool) -> Counter:
        return Counter(r for k, r in self.reasons.items() if (ANNOTATION_MARK in k) == annotations)

    @property
    def counts(self) -> Counter:
        return Counter(self.reasons.values())

    @property
    def total(self) -> int:
        return len(self.reasons)

    @property
    def annotations(self) -> int:
        return sum(self._counts(True).values())

    @property
    def files(self) -> int:
        return self.total - self.annotations

    def summary(self) -> str:
        """E.g. '2 files skipped (missing: 1, unreadable: 1); 1 annotation skipped (crowd: 1)'."""
        parts = [f"{plural(sum(c.values()), word)} skipped ({_reasons(c)})"
                 for word, c in (("file", self._counts(False)), ("annotation", self._counts(True))) if c]
        return "; ".join(parts) or "nothing skipped"

    def to_dict(self) -> dict:
        """Totals (all, files, annotations), counts by reason and the first keys (sorted) of each: the
        same in any process order."""
        examples: dict[str, list[str]] = {}
        for path in sorted(self.reasons):
            bucket = examples.setdefault(self.reasons[path], [])
            if len(bucket) < EXAMPLES:
                bucket.append(path)
        return {"total": self.total, "files": self.files, "annotations": self.annotations,
                "by_reason": dict(sorted(self.counts.items())), "examples": dict(sorted(examples.items()))}
