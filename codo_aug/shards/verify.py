"""Check a shard folder against its `_info.json`: every shard present, whole and unchanged."""

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .index import read_json
from .writer import INFO_FILE, sha256_file


@dataclass(frozen=True)
class Problem:
    """One shard that does not match the index: missing, truncated or corrupted."""

    name: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.kind} ({self.detail})"


def load_info(out: Path) -> dict:
    info = read_json(out / INFO_FILE)
    if info is None:
        raise InputError(f"{out}: no {INFO_FILE}; not a finished codo shard folder "
                         "(finish the job on every node)")
    return info


def verify(out: Path) -> tuple[dict, list[Problem]]:
    """The folder's info and the problems found (none when every shard matches size and sha256)."""
    info = load_info(out)
    problems = []
    for entry in info["shards"]:
        path = out / entry["name"]
        if not path.exists():
            problems.append(Problem(entry["name"], "missing", "no such file"))
            continue
        size = path.stat().st_size
        if size < entry["bytes"]:
            problems.append(Problem(entry["name"], "truncated", f"{size} of {entry['bytes']} bytes"))
        elif size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(Problem(entry["name"], "corrupted", "sha256 differs from the index"))
    return info, problems
