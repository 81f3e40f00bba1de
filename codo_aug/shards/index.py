"""The bookkeeping of a shard folder: `_job.json` (what is being made), `_index/` (one entry per
finished shard) and `_info.json` (the summary with the per-shard index, once every shard exists).

An index entry is written before its shard is renamed into place, so every visible shard has one;
entries from several processes or machines merge by name into the same `_info.json`.
"""

import hashlib
import json
from pathlib import Path

from ..sources.skips import SkipLog
from .writer import INFO_FILE, SHARD_PREFIX, ShardStats, shard_name, write_json_atomic

JOB_FILE = "_job.json"
INDEX_DIR = "_index"


def source_identity(spec: str, source) -> dict:
    """What identifies a source's content: its spec, kind, item count and a digest of its items."""
    h = hashlib.sha256()
    for it in source.items:
        h.update(f"{it.path}\t{it.label}\t{it.cutout}\t{it.box}\n".encode())
    return {"spec": spec, "kind": source.kind, "items": len(source.items), "digest": h.hexdigest()}


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_entry(out: Path, stats: ShardStats, skips: dict[str, str]) -> None:
    (out / INDEX_DIR).mkdir(exist_ok=True)
    entry = {"name": stats.name, "samples": stats.samples, "bytes": stats.bytes, "sha256": stats.sha256,
             "render_skips": dict(sorted(skips.items()))}
    write_json_atomic(out / INDEX_DIR / stats.name.replace(".tar", ".json"), entry)


def read_entries(out: Path) -> dict[str, dict]:
    """Index entries by shard name, for shards that exist."""
    entries = {}
    for p in sorted((out / INDEX_DIR).glob(f"{SHARD_PREFIX}-*.json")):
        entry = read_json(p)
        if entry is not None and (out / entry["name"]).exists():
            entries[entry["name"]] = entry
    return entries


def build_info(job: dict, entries: dict[str, dict], sources: dict) -> dict:
    """`_info.json`: the job, its sources' skip counts, render-time skips and the per-shard index."""
    skips = SkipLog()
    for entry in entries.values():
        skips.merge(entry["render_skips"])
    return {
        **job,
        "num_shards": len(entries),
        "sources": sources,
        "render_skipped": skips.to_dict(),
        "shards": [{k: e[k] for k in ("name", "samples", "bytes", "sha256")} for e in entries.values()],
    }


def finish_info(out: Path, job: dict, num_shards: int, sources: dict) -> dict | None:
    """Write `_info.json` once every shard of the job exists; None while some are missing."""
    entries = read_entries(out)
    if set(entries) != {shard_name(s) for s in range(num_shards)}:
        return None
    info = build_info(job, entries, sources)
    write_json_atomic(out / INFO_FILE, info)
    return info
