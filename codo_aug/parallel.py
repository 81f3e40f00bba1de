"""Run independent tasks (one shard, one chunk) in worker processes; results come in completion order.

Each worker gets the same state (e.g. a Synthesizer with its sources already opened), pickled into
freshly spawned processes: forking a process whose cv2 thread pool has run can deadlock the child.
"""

import ctypes
import multiprocessing as mp
import signal
from typing import Any, Callable, Iterable, Iterator

import cv2

_STATE: dict[str, Any] = {}


def _die_with_parent() -> None:
    """On Linux, ask the kernel to end this worker when its parent dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _init(state: Any) -> None:
    _die_with_parent()
    cv2.setNumThreads(1)  # one process per core: no nested threads
    _STATE["state"] = state


def run_tasks(fn: Callable[[Any, Any], Any], tasks: Iterable[Any], state: Any, workers: int) -> Iterator[Any]:
    """fn(state, task) for each task; in this process when `workers` == 1, else in a pool of `workers`."""
    tasks = list(tasks)
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(state, task)
        return
    with mp.get_context("spawn").Pool(min(workers, len(tasks)), initializer=_init, initargs=(state,)) as pool:
        for result in pool.imap_unordered(_Bound(fn), tasks):
            yield result


class _Bound:
    """A picklable fn(state, task) bound to the worker's state."""

    def __init__(self, fn: Callable[[Any, Any], Any]):
        self.fn = fn

    def __call__(self, task: Any) -> Any:
        return self.fn(_STATE["state"], task)
