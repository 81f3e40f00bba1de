"""What identifies a source's content, for the job files that tell a resume from another job."""

import hashlib

from .location import resolve_spec


def source_identity(spec: str, source) -> dict:
    """What identifies a source's content: its spec (resolved: the same place however it is spelled), kind,
    item count, a digest of its items, and what else decides its pixels (Source.identity: a prepared
    store's manifest)."""
    h = hashlib.sha256()
    for it in source.items:
        h.update(f"{it.path}\t{it.label}\t{it.cutout}\t{it.box}\n".encode())
    return {"spec": resolve_spec(spec), "kind": source.kind, "items": len(source.items),
            "digest": h.hexdigest(), **source.identity()}
