"""What the synth and prepare jobs share: numbered units (shards, parts) split over machines, the checks
of workers and nodes, the same-job check against the job file in --out, creating --out, and the loop that
counts finished units as progress and writes the rest in worker processes."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError
from .location import resolve_spec
from .parallel import run_tasks
from .plural import plural


@dataclass(frozen=True)
class Split:
    """`total` items in units of `size`; node `rank` of `nodes` writes the units k with k % nodes == rank,
    so the units (and their bytes) do not depend on how many machines or workers share the job."""

    total: int
    size: int
    nodes: int = 1
    rank: int = 0

    @property
    def count(self) -> int:
        return math.ceil(self.total / self.size)

    def mine(self) -> list[int]:
        """The units this node writes."""
        return [k for k in range(self.count) if k % self.nodes == self.rank]

    def members(self, unit: int) -> range:
        """The items of `unit`."""
        return range(unit * self.size, min((unit + 1) * self.size, self.total))


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


def make_dir(path: Path) -> None:
    """Create the local --out `path`; a place the checks could not foresee (a read-only mount, a root
    on /proc) is an input error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {path}: cannot create it ({exc.strerror or exc})") from None


def start_units(split: Split, done: list[int], on_start: Callable[[int], None],
                on_item: Callable[[], None]) -> None:
    """Report this node's item count to `on_start`, and the items of its `done` units as progress."""
    on_start(sum(len(split.members(k)) for k in split.mine()))
    for k in done:
        for _ in split.members(k):
            on_item()


def _no_progress() -> None:
    """Workers in other processes report progress per unit, through their results."""


def run_units(write: Callable[[tuple, int], Any], todo: list[int], state: tuple, workers: int,
              on_item: Callable[[], None], count: Callable[[Any], int]) -> Iterator[Any]:
    """write((*state, progress), unit) for each unit of `todo` in `workers` processes, yielding each result:
    progress is `on_item` per item in this process, else `count(result)` items as each result comes."""
    in_process = workers <= 1 or len(todo) <= 1
    for result in run_tasks(write, todo, (*state, on_item if in_process else _no_progress), workers):
        if not in_process:
            for _ in range(count(result)):
                on_item()
        yield result
