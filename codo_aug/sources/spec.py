"""Parse `KIND[:PATH]` source specs and open them for a role (instances or backgrounds): the one
resolver behind every command and Python entry point."""

import os
from pathlib import Path
from typing import Callable

from ..errors import InputError
from .base import Source
from .coco import open_coco
from .folder import open_folder, open_imagenet
from .prepared import open_prepared
from .bundled import ensure_sample

#: Kinds that take a PATH: {kind: opener(PATH text, role, min_side)}.
OPENERS: dict[str, Callable[[str, str, int], Source]] = {
    "imagenet": open_imagenet,
    "coco": open_coco,
    "folder": lambda text, role, min_side: open_folder(Path(text).expanduser(), role, min_side),
    "prepared": open_prepared,
}
KINDS = (*OPENERS, "sample")
ROLES = ("instances", "backgrounds")
#: Where a kind given without PATH looks.
ENV_VARS = {kind: f"CODO_{kind.upper()}" for kind in OPENERS}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split 'KIND[:PATH]'; the kind must be known. PATH stays text: `coco` and `imagenet` may hold two."""
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InputError(f"unknown source kind {kind!r} in {spec!r}; "
                         f"choose one of {', '.join(KINDS)} (KIND[:PATH])")
    if sep and not path:
        raise InputError(f"source {spec!r} has an empty PATH after ':'")
    return kind, path or None


def open_source(spec: str, role: str, min_side: int = 1) -> Source:
    """Open the source `spec` as a pool of `role` ('instances' or 'backgrounds').

    Backgrounds with a side under `min_side` pixels are skipped and counted; so are instance images
    (and COCO annotations) narrower or lower than it.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    kind, text = parse_spec(spec)
    if kind == "sample":
        if text is not None:
            raise InputError("the sample source takes no PATH; set CODO_CACHE to move its cache")
        return open_folder(ensure_sample() / role, role, min_side, kind="sample")
    if text is None:
        var = ENV_VARS[kind]
        if not os.environ.get(var):
            raise InputError(f"{kind} source has no PATH and ${var} is not set; "
                             f"give {kind}:PATH or set {var}")
        text = os.environ[var]
    return OPENERS[kind](text, role, min_side)
