"""A job's numbered units (shards, parts) split over machines, and the loop that counts finished units as
progress and writes the rest in worker processes."""

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..parallel import run_tasks


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
