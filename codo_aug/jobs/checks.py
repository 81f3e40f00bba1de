"""The checks every job makes before it writes: its fields, its workers and nodes, an --out it can write
that holds nothing foreign, and the same-job check against the job file already in --out."""

import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io.location import resolve_spec
from ..io.storage import Folder, UrlFolder, input_errors
from ..plural import plural


def check_fields(job: Any, checks: list[tuple[bool, str, str]]) -> None:
    """InputError naming the first failed check (ok, field, allowed) with the field's value in `job`."""
    for ok, name, allowed in checks:
        if not ok:
            raise InputError(f"invalid {name}={getattr(job, name)!r}: must be {allowed}")


def process_checks(workers: int, num_nodes: int, node_rank: int) -> list[tuple[bool, str, str]]:
    """The checks (for check_fields) of a job's workers and nodes."""
    return [(workers >= 1, "workers", ">= 1"), (num_nodes >= 1, "num_nodes", ">= 1"),
            (0 <= node_rank < num_nodes, "node_rank", f"in 0..{num_nodes - 1}")]


def differences(old: dict, new: dict) -> list[str]:
    """The keys whose values differ between two job identities."""
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def resolve_specs(identity: dict) -> dict:
    """`identity` with every source 'spec' in it resolved (location.resolve_spec): a job file written
    before specs were stored resolved holds them as typed, relative to the working directory of the day."""
    return {k: resolve_spec(v) if k == "spec" and isinstance(v, str) else
            resolve_specs(v) if isinstance(v, dict) else v for k, v in identity.items()}


def check_same_job(out: object, old: dict | None, identity: dict, unit: str, done: int,
                   kind: str = "") -> None:
    """Refuse an --out whose job file (`old`, None when missing or unreadable) is not this job's: its
    `done` finished `unit`s (shard, part) cannot be told apart from another `kind` job's, and --overwrite,
    which the refusal offers, discards them."""
    discards = f" (discards the {plural(done, 'finished ' + unit)})" if done else ""
    if old is None:
        raise InputError(f"--out {out} holds {unit}s of an unknown job; choose a new directory or pass "
                         f"--overwrite{discards}")
    differs = differences(resolve_specs(old), identity)
    if differs:
        raise InputError(f"--out {out} holds a different {kind}job (differs in: {', '.join(differs)}); "
                         "run the same command to finish it, or choose a new directory or pass --overwrite"
                         f"{discards}")


def _check_local(out: Path) -> None:
    """Refuse a local --out that is a file, lies under a file or in a folder we cannot write."""
    place = next(p for p in (out, *out.parents) if p.exists())
    if not place.is_dir():
        raise InputError(f"--out {out} exists and is not a directory" if place == out
                         else f"--out {out} lies under {place}, which is a file, not a directory")
    if not os.access(place, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot write in {place} (permission denied)")


def _check_bucket(out: UrlFolder) -> None:
    """Refuse an --out URL whose bucket does not exist or is not visible: object stores make no buckets
    on write, and the first unit would fail only after it was rendered."""
    bucket = out.root.split("/", 1)[0]
    if not out.fs.exists(bucket):
        raise InputError(f"--out {out}: bucket {bucket!r} does not exist (or is not visible with these "
                         "credentials); create it first")


def check_writable(out: Folder) -> None:
    """Refuse an --out (local or a prefix) that cannot be written."""
    if isinstance(out, UrlFolder):
        with input_errors(f"--out {out}"):
            _check_bucket(out)
    else:
        _check_local(out.path)


def make_dir(path: Path) -> None:
    """Create the local --out `path`; a place the checks could not foresee (a read-only mount, a root
    on /proc) is an input error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {path}: cannot create it ({exc.strerror or exc})") from None


def make_out(out: Folder) -> None:
    """Create a local --out (a prefix needs no creating)."""
    if not isinstance(out, UrlFolder):
        make_dir(out.path)
