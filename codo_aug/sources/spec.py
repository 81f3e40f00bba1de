"""Parse `KIND[:PATH]` source specs and open them for a role (instances or backgrounds)."""

import os
from pathlib import Path

from ..errors import InputError
from .base import Source
from .coco import open_coco
from .folder import open_folder, open_imagenet
from .sample import ensure_sample

KINDS = ("imagenet", "coco", "folder", "sample")
ROLES = ("instances", "backgrounds")
#: Where a kind given without PATH looks.
ENV_VARS = {"imagenet": "CODO_IMAGENET", "coco": "CODO_COCO", "folder": "CODO_FOLDER"}


def parse_spec(spec: str) -> tuple[str, Path | None]:
    """Split 'KIND[:PATH]'; the kind must be known."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InputError(f"unknown source kind {kind!r} in {spec!r}; choose one of {', '.join(KINDS)} (KIND[:PATH])")
    if sep and not path:
        raise InputError(f"source {spec!r} has an empty PATH after ':'")
    return kind, Path(path).expanduser() if path else None


def open_source(spec: str, role: str, min_side: int = 1) -> Source:
    """Open the source `spec` as a pool of `role` ('instances' or 'backgrounds').

    Images (and COCO annotations) narrower or lower than `min_side` pixels are skipped and counted.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    kind, path = parse_spec(spec)
    if kind == "sample":
        if path is not None:
            raise InputError("the sample source takes no PATH; set CODO_CACHE to move its cache")
        root = ensure_sample()
        return open_folder(root / role, kind="sample", min_side=min_side)
    if path is None:
        var = ENV_VARS[kind]
        if not os.environ.get(var):
            raise InputError(f"{kind} source has no PATH and ${var} is not set; give {kind}:PATH or set {var}")
        path = Path(os.environ[var]).expanduser()
    if kind == "coco":
        return open_coco(path, role, min_side)
    if kind == "imagenet":
        return open_imagenet(path, min_side)
    return open_folder(path, min_side=min_side)
