"""What a shard folder holds: counts and histograms read from the samples' JSON members."""

import json
import math
from collections import Counter

from .reader import iter_members

SIZE_BINS = 10  # instance size sqrt(w*h) / view size, in tenths


def collect_stats(paths: list[str]) -> dict:
    """Samples, views, instances per view, instance size and source class histograms (classes
    most common first, with every class counted)."""
    samples, views = 0, 0
    per_view: Counter = Counter()
    sizes: Counter = Counter()
    classes: Counter = Counter()
    for _, members in _json_members(paths):
        meta = json.loads(members)
        samples += 1
        classes.update(meta.get("labels") or [])
        for v in meta["views"]:
            views += 1
            per_view[len(v["ids"])] += 1
            for x1, y1, x2, y2 in v["boxes"]:
                frac = math.sqrt(max(x2 - x1, 0) * max(y2 - y1, 0)) / v["size"]
                sizes[min(int(frac * SIZE_BINS), SIZE_BINS - 1)] += 1
    return {
        "shards": len(paths),
        "samples": samples,
        "views": views,
        "instances_per_view": {str(k): per_view[k] for k in sorted(per_view)},
        "instance_size": {f"{b / SIZE_BINS:.1f}-{(b + 1) / SIZE_BINS:.1f}": sizes[b]
                          for b in range(SIZE_BINS)},
        "source_classes": dict(classes.most_common()),
    }


def _json_members(paths: list[str]):
    for path in paths:
        for key, members in iter_members(path):
            if "json" in members:
                yield key, members["json"]


def class_spread(counts: dict[str, int]) -> str:
    """'N classes, MIN..MAX each': how even the per-class counts are (balance_classes evens them)."""
    if not counts:
        return "no classes"
    return f"{len(counts)} classes, {min(counts.values())}..{max(counts.values())} each"


def format_stats(stats: dict, width: int = 40, top: int = 20) -> str:
    """A plain-text report with bar charts; the class chart shows the `top` most common classes,
    and the least common ones too when there are more."""
    lines = [f"shards: {stats['shards']}   samples: {stats['samples']}   views: {stats['views']}"]

    def chart(title: str, counts: dict, peak: int = 0) -> None:
        lines.append(f"\n{title}")
        peak = peak or max(counts.values(), default=0) or 1
        for label, n in counts.items():
            lines.append(f"  {label:>24} {n:8d} {'#' * round(width * n / peak)}")

    chart("instances per view", stats["instances_per_view"])
    chart("instance size (sqrt(box area) / view size)", stats["instance_size"])
    ranked = list(stats["source_classes"].items())
    spread = class_spread(stats["source_classes"])
    chart(f"source classes ({spread}; top {min(top, len(ranked))})", dict(ranked[:top]))
    tail = ranked[max(top, len(ranked) - top // 4):]
    if tail:
        chart(f"least common source classes (last {len(tail)})", dict(tail), ranked[0][1])
    return "\n".join(lines)
