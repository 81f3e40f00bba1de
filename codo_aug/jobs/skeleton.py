"""The job skeleton every writing job runs (synth's WebDataset and COCO outputs, prepare's store): check
--out, tell a resume from another job by the job file, clear leftovers, write the missing units in worker
processes, and finish once every unit of every node exists. An `Output` fills in what differs: its files,
when a unit is done, how one is written and how the job finishes.

A unit is written whole by one process (a temporary file renamed into place locally, an object uploaded
whole), so what a job writes does not depend on how many workers or machines share it, and running the
same command again finishes a stopped job.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError
from ..io.atomic import in_flight_here, left_by_dead_process, temp_pattern, temp_target
from ..io.jsonfiles import read_json, write_json
from ..io.storage import Folder
from .checks import check_same_job, check_writable, make_out
from .units import Split, run_units, start_units


class Output(ABC):
    """One kind of job output in `folder`, as the skeleton fills it in. Instances travel to worker
    processes with the job's state, so they hold only picklable things."""

    #: The job file (the identity of the job that writes the folder) and the file written last.
    job_file: str
    final_file: str
    #: What a unit is called in messages ('shard', 'part'), how a refusal names a different job
    #: ('', 'prepare '), what a foreign --out is not, and whose files --overwrite replaces.
    unit: str
    kind: str = ""
    what: str = "a codo job"
    owner: str = "codo's own files"

    def __init__(self, folder: Folder):
        self.folder = folder

    def upgrade(self, old: dict) -> dict:
        """A job file written by an earlier version, in today's form (compared with this job's identity)."""
        return old

    @abstractmethod
    def outputs(self) -> list[str]:
        """Sorted names of an earlier job's files in the folder (temporary files included)."""

    @abstractmethod
    def finished(self) -> int:
        """How many finished units the folder holds: what --overwrite would discard."""

    @abstractmethod
    def done(self, unit: int) -> bool:
        """Whether unit `unit` was finished by an earlier run."""

    @abstractmethod
    def unit_files(self, unit: int) -> list[str]:
        """The names unit `unit` writes (a killed write leaves their temporary files)."""

    @abstractmethod
    def write(self, state: tuple, unit: int) -> Any:
        """Write unit `unit` from `state` (the job's state, then the progress callback), in whichever
        process runs it; returns what the report needs of it."""

    @abstractmethod
    def items(self, result: Any) -> int:
        """How many items a `write` result covers (progress of units written in other processes)."""

    @abstractmethod
    def finish(self, state: tuple, identity: dict) -> dict | None:
        """Write `final_file` once every unit of the job exists and return what it says; None while some
        are missing (other nodes' units). `state` is the job's state, without the progress callback."""


def check_out(output: Output) -> None:
    """Refuse an --out that cannot be written, or is a non-empty folder holding none of this output's
    files (--overwrite never touches files that are not its own)."""
    folder = output.folder
    check_writable(folder)
    if folder.exists() and not output.outputs():
        entries = folder.names("*")
        if entries:
            more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
            raise InputError(f"--out {folder} is a non-empty folder that is not {output.what} (it holds "
                             f"{entries[0]!r}{more}); choose a new or empty directory (--overwrite only "
                             f"replaces {output.owner})")


def check_resume(output: Output, identity: dict, overwrite: bool) -> None:
    """Accept an --out that is new, holds this same job (a resume) or is replaced (--overwrite); refuse
    one that holds another job's files."""
    if overwrite or not output.outputs():
        return
    old = read_json(output.folder, output.job_file)
    check_same_job(output.folder, None if old is None else output.upgrade(old), identity, output.unit,
                   output.finished(), output.kind)


def _temp_glob(name: str) -> str:
    """The glob of the temporary files of member `name` ('annotations/instances.json' ->
    'annotations/.instances.json.*.tmp')."""
    folder, _, base = name.rpartition("/")
    return f"{folder}/{temp_pattern(base)}" if folder else temp_pattern(base)


def leftovers(output: Output, mine: list[int]) -> list[str]:
    """Temporary files left by this node's killed runs: of its units (only it writes those; other nodes'
    may be in flight) unless a running process here writes them (a second job of this node rank, which
    finishes them itself), and of the job and final files when the process that wrote them on this
    machine has ended."""
    names = {name for unit in mine for name in output.unit_files(unit)}
    suffixes = {"." + name.rpartition(".")[2] for name in names}
    folders = sorted({name.rpartition("/")[0] for name in names})
    found = []
    for sub in folders:
        prefix = f"{sub}/" if sub else ""
        for tmp in output.folder.names(prefix + temp_pattern("*")):
            ours = any(prefix + temp_target(tmp, suffix) in names for suffix in suffixes)
            if ours and not in_flight_here(tmp):
                found.append(tmp)
    shared = [tmp for name in (output.job_file, output.final_file)
              for tmp in output.folder.names(_temp_glob(name)) if left_by_dead_process(tmp)]
    return found + shared


@dataclass
class JobRun:
    """What one run of the skeleton did: the units finished before it, the results of those it wrote, and
    what the final file says (None while other nodes' units are missing)."""

    done: list[int]
    results: list[Any]
    final: dict | None


def run_job(output: Output, identity: dict, split: Split, state: tuple, overwrite: bool, workers: int,
            on_item: Callable[[], None] = lambda: None,
            on_start: Callable[[int], None] = lambda n: None) -> JobRun:
    """The skeleton, once the checks passed: create --out, remove an old job's files (--overwrite) and this
    node's leftovers, write the job file, write this node's missing units in `workers` processes, then
    finish."""
    folder = output.folder
    make_out(folder)
    for old in (output.outputs() if overwrite else []):
        folder.remove(old)
    for tmp in leftovers(output, split.mine()):
        folder.remove(tmp)
    if read_json(folder, output.job_file) is None:
        write_json(folder, output.job_file, identity)
    done = [k for k in split.mine() if output.done(k)]
    todo = [k for k in split.mine() if k not in done]
    start_units(split, done, on_start, on_item)
    results = list(run_units(output.write, todo, state, workers, on_item, output.items))
    return JobRun(done, results, output.finish(state, identity))
