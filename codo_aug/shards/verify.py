"""Check a shard folder against its `_info.json`: every shard present, whole and unchanged."""

from dataclasses import dataclass
from typing import Callable

from ..errors import InputError
from ..io.jsonfiles import read_json
from ..io.storage import Folder, input_errors
from ..outputs.coco import INSTANCES
from .writer import INFO_FILE, sha256_stream


@dataclass(frozen=True)
class Problem:
    """One shard that does not match the index: missing, truncated or corrupted."""

    name: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.kind} ({self.detail})"


def load_info(out: Folder) -> dict:
    if not out.exists():
        raise InputError(f"{out}: no such folder or prefix")
    info = read_json(out, INFO_FILE)
    if info is None and out.exists(INSTANCES):
        raise InputError(f"{out} holds a COCO export ({INSTANCES}), not shards: verify checks shard "
                         "folders (codo-aug synth without --format coco writes them)")
    if info is None:
        raise InputError(f"{out}: no {INFO_FILE}; not a finished codo shard folder "
                         "(finish the job on every node)")
    return info


def _sha256(out: Folder, name: str) -> str:
    with input_errors(out.child(name)), out.open(name) as fh:
        return sha256_stream(fh)


def check(entry: dict, size: int | None, sha256: Callable[[], str]) -> Problem | None:
    """What is wrong with a shard of `size` bytes (None: missing) against its `_info.json` entry, or None;
    `sha256()` is asked for only when the size matches. One rule for `verify` and for reading."""
    name, listed = entry["name"], entry["bytes"]
    if size is None:
        return Problem(name, "missing", "no such file")
    if size < listed:
        return Problem(name, "truncated", f"{size} of {listed} bytes")
    if size != listed or sha256() != entry["sha256"]:
        return Problem(name, "corrupted", "sha256 differs from the index")
    return None


def verify(out: Folder) -> tuple[dict, list[Problem]]:
    """The folder's info and the problems found (none when every shard matches size and sha256)."""
    info = load_info(out)
    problems = []
    for entry in info["shards"]:
        problem = check(entry, out.size(entry["name"]), lambda name=entry["name"]: _sha256(out, name))
        if problem is not None:
            problems.append(problem)
    return info, problems
