"""Where a job reads and writes, by meaning rather than spelling: the one place that turns a path, a URL or
a `KIND[:PATH]` source spec into the form jobs store and compare, so that `run`, `./run/`, `/abs/run` and
`../here/run` from another working directory name the same run, and two folders of one name do not."""

import re
from pathlib import Path

from ..errors import InputError
from ..sources.paths import split_paths
from .storage import is_url, local_path

#: Characters that make a path component a pattern (glob or WebDataset braces): kept as written.
_PATTERN = re.compile(r"[*?\[{]")


def _resolve_path(text: str) -> str:
    """`text` with `~` expanded, made absolute and normalised, symlinks resolved, up to its first pattern
    component (`shards/codo-{000000..000009}.tar`, `sh*/x.tar`): the rest is kept as written."""
    parts = Path(text).expanduser().parts
    k = next((i for i, part in enumerate(parts) if _PATTERN.search(part)), len(parts))
    return str(Path(*parts[:k]).resolve().joinpath(*parts[k:]))


def _normal_url(url: str) -> str:
    """`url` with its scheme in lower case and no repeated or trailing '/' in its path."""
    scheme, _, rest = url.partition("://")
    host, _, path = rest.partition("/")
    path = re.sub("/+", "/", path).strip("/")
    return f"{scheme.lower()}://{host}" + (f"/{path}" if path else "")


def resolve_location(text: str) -> str:
    """A local path (or file:// URL) as an absolute, normalised path with symlinks resolved; a URL with
    repeated and trailing slashes removed; '' stays ''. Pure but for the file system's symlinks and the
    working directory it resolves against."""
    if not text:
        return text
    text = local_path(text)
    return _normal_url(text) if is_url(text) else _resolve_path(text)


def _spec_paths(text: str) -> list[str]:
    """The PATHs of a spec: two where `coco:JSON:IMAGES` or `imagenet:IMAGES:BOXES` name two that exist
    (sources.paths.split_paths), else the whole text."""
    if is_url(text):  # never split at the scheme's ':', whatever the working directory holds
        return [text]
    try:
        first, second = split_paths(text, "")
    except InputError:  # a place that is gone (an old run's source): compared as written
        return [text]
    return [str(first)] if second is None else [str(first), str(second)]


def resolve_spec(spec: str) -> str:
    """A source spec `KIND[:PATH]` with its kind in lower case and each PATH resolved (resolve_location):
    'folder:imgs/' from /data and 'Folder:/data/imgs' are both 'folder:/data/imgs'; '' stays ''."""
    kind, _, text = spec.partition(":")
    kind = kind.strip().lower()
    if not text:
        return kind
    return f"{kind}:" + ":".join(resolve_location(path) for path in _spec_paths(text))
