"""Run independent tasks (one shard, one chunk) in worker processes; results come in completion order.

Each worker gets the same state (e.g. a Synthesizer with its sources already opened): inherited
through fork where the platform has it, pickled otherwise.
"""

import multiprocessing as mp
from typing import Any, Callable, Iterable, Iterator

import cv2

_STATE: dict[str, Any] = {}


def _init(state: Any) -> None:
    cv2.setNumThreads(1)  # one process per core: no nested threads
    _STATE["state"] = state


def run_tasks(fn: Callable[[Any, Any], Any], tasks: Iterable[Any], state: Any, workers: int) -> Iterator[Any]:
    """fn(state, task) for each task; in this process when `workers` == 1, else in a pool of `workers`."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(state, task)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(min(workers, len(tasks)), initializer=_init, initargs=(state,)) as pool:
        for result in pool.imap_unordered(_Bound(fn), tasks):
            yield result


class _Bound:
    """A picklable fn(state, task) bound to the worker's state."""

    def __init__(self, fn: Callable[[Any, Any], Any]):
        self.fn = fn

    def __call__(self, task: Any) -> Any:
        return self.fn(_STATE["state"], task)
