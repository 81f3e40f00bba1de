"""The bookkeeping of a shard folder: `_job.json` (what is being made), `_index/` (one entry per
finished shard) and `_info.json` (the summary with the per-shard index, once every shard exists).

An index entry is written before its shard appears under its name, so every visible shard has one;
entries from several processes or machines merge by name into the same `_info.json`. The folder is
local or a prefix in object storage (io.storage.Folder).
"""

from ..io.jsonfiles import read_json, write_json
from ..io.storage import Folder
from ..sources.skips import SkipLog
from .writer import INFO_FILE, SHARD_PREFIX, ShardStats, shard_name

JOB_FILE = "_job.json"
INDEX_DIR = "_index"


def write_entry(out: Folder, stats: ShardStats, skips: dict[str, str]) -> None:
    entry = {"name": stats.name, "samples": stats.samples, "bytes": stats.bytes, "sha256": stats.sha256,
             "render_skips": dict(sorted(skips.items()))}
    write_json(out, f"{INDEX_DIR}/{stats.name.replace('.tar', '.json')}", entry)


def read_entries(out: Folder) -> dict[str, dict]:
    """Index entries by shard name, for shards that exist."""
    entries = {}
    shards = set(out.names(f"{SHARD_PREFIX}-*.tar"))
    for name in out.names(f"{INDEX_DIR}/{SHARD_PREFIX}-*.json"):
        entry = read_json(out, name)
        if entry is not None and entry.get("name") in shards:
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


def finish_info(out: Folder, job: dict, num_shards: int, sources: dict) -> dict | None:
    """Write `_info.json` once every shard of the job exists; None while some are missing."""
    entries = read_entries(out)
    if set(entries) != {shard_name(s) for s in range(num_shards)}:
        return None
    info = build_info(job, entries, sources)
    write_json(out, INFO_FILE, info)
    return info
