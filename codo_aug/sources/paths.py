"""The PATH of a source spec: one path, or two joined by ':' (`coco:JSON:IMAGES`, `imagenet:IMAGES:BOXES`)."""

from pathlib import Path

from ..errors import InputError


def split_paths(text: str, option: str) -> tuple[Path, Path | None]:
    """`text` as (path, second path or None), each with `~` expanded.

    The whole text is one path when it exists (so a ':' inside a file name still works); else it is
    split at the first ':' whose left part exists. InputError starting with `option` when nothing does.
    """
    whole = Path(text).expanduser()
    if whole.exists():
        return whole, None
    for k, char in enumerate(text):
        if char == ":" and k and text[k + 1:] and Path(text[:k]).expanduser().exists():
            return Path(text[:k]).expanduser(), Path(text[k + 1:]).expanduser()
    raise InputError(f"{option}: path does not exist: {text}")
