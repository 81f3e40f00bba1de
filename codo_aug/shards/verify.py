"""Check a shard folder against its `_info.json`: every shard present, whole and unchanged."""

from dataclasses import dataclass

from ..coco_export import INSTANCES
from ..errors import InputError
from .index import read_json
from .storage import Folder, input_errors
from .writer import INFO_FILE, sha256_stream

COCO_INSTANCES = INSTANCES.as_posix()


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
    if info is None and out.exists(COCO_INSTANCES):
        raise InputError(f"{out} holds a COCO export ({COCO_INSTANCES}), not shards: verify checks shard "
                         "folders (codo-aug synth without --format coco writes them)")
    if info is None:
        raise InputError(f"{out}: no {INFO_FILE}; not a finished codo shard folder "
                         "(finish the job on every node)")
    return info


def _sha256(out: Folder, name: str) -> str:
    with input_errors(out.child(name)), out.open(name) as fh:
        return sha256_stream(fh)


def verify(out: Folder) -> tuple[dict, list[Problem]]:
    """The folder's info and the problems found (none when every shard matches size and sha256)."""
    info = load_info(out)
    problems = []
    for entry in info["shards"]:
        size = out.size(entry["name"])
        if size is None:
            problems.append(Problem(entry["name"], "missing", "no such file"))
        elif size < entry["bytes"]:
            problems.append(Problem(entry["name"], "truncated", f"{size} of {entry['bytes']} bytes"))
        elif size != entry["bytes"] or _sha256(out, entry["name"]) != entry["sha256"]:
            problems.append(Problem(entry["name"], "corrupted", "sha256 differs from the index"))
    return info, problems
