"""The synth job: sources + config + seed -> WebDataset shards (or a COCO set) in an output folder, local
or a prefix in object storage (s3://bucket/prefix: each shard uploaded whole once complete).

Shard s holds samples [s * shard_size, (s + 1) * shard_size); each shard is written whole by one
process, so the bytes do not depend on how many workers or machines share the job. A run that
stops halfway is finished by running the same command again: finished shards are kept, the rest
written. Node r of N writes the shards s with s % N == r.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import coco_export
from .atomic import in_flight_here, left_by_dead_process, temp_pattern, temp_target
from .config import SynthConfig
from .errors import InputError
from .jobs import Split, check_fields, check_same_job, make_dir, process_checks, run_units, start_units
from .location import resolve_spec
from .pipeline import Synthesizer
from .plural import plural
from .shards.format import IMAGE_FORMATS, encode_sample
from .shards.index import (INDEX_DIR, JOB_FILE, finish_info, read_json, source_identity, write_entry,
                           write_json)
from .shards.storage import Folder, UrlFolder, folder_at, input_errors, is_url
from .shards.writer import INFO_FILE, SHARD_PREFIX, ShardStats, shard_name, write_shard
from .sources.base import CUT_BY
from .sources.skips import SkipLog
from .version import __version__

FORMATS = ("webdataset", "coco")


@dataclass(frozen=True)
class SynthJob:
    """What `codo-aug synth` was asked to make, and by how many processes and machines."""

    out: Path | str
    num_samples: int = 1000
    seed: int = 0
    instances: str = "sample"
    backgrounds: str = "sample"
    shard_size: int = 1000
    image_format: str = "jpg"
    config: SynthConfig = SynthConfig()
    overwrite: bool = False
    workers: int = 1
    num_nodes: int = 1
    node_rank: int = 0
    format: str = "webdataset"

    def __post_init__(self) -> None:
        checks = [
            (self.num_samples >= 1, "num_samples", ">= 1"),
            (self.seed >= 0, "seed", ">= 0"),
            (self.shard_size >= 1, "shard_size", ">= 1"),
            (self.image_format in IMAGE_FORMATS, "image_format", f"one of {', '.join(IMAGE_FORMATS)}"),
            *process_checks(self.workers, self.num_nodes, self.node_rank),
            (self.format in FORMATS, "format", f"one of {', '.join(FORMATS)}"),
            (self.format == "webdataset" or not is_url(str(self.out)), "format",
             "webdataset when --out is a URL (a COCO export goes to a local folder)"),
        ]
        check_fields(self, checks)

    @property
    def folder(self) -> Folder:
        """Where the output goes: a local folder or an object-storage prefix."""
        return folder_at(self.out)

    @property
    def split(self) -> Split:
        """The samples in shards, and the shards this node writes."""
        return Split(self.num_samples, self.shard_size, self.num_nodes, self.node_rank)


#: How the synth summary names each `Item.cut_by` kind of instance.
CUT_WORDS = {"box": "from boxes", "mask": "from masks", "rect": "random rects"}


@dataclass
class SynthReport:
    """What this run wrote and found: its shards (written now or before), the instance pool's cutout
    kinds (`Item.cut_by` counts), every file and annotation skipped, and the index when complete."""

    out: Path | str
    format: str
    shards: list[ShardStats]
    resumed: int
    cut_by: dict[str, int]
    skips: SkipLog
    info: dict | None

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def skipped(self) -> int:
        return self.skips.total

    def summary(self) -> str:
        """The one line `codo-aug synth` prints: what was written where, where the instances come from,
        and the files and annotations skipped."""
        unit = "part(s)" if self.format == "coco" else "shard(s)"
        resumed = f" ({self.resumed} already there)" if self.resumed else ""
        kinds = ", ".join(f"{self.cut_by[k]} {CUT_WORDS[k]}" for k in CUT_BY)
        index = coco_export.INSTANCES.as_posix() if self.format == "coco" else INFO_FILE
        see = f" (see {index})" if self.skips.total else ""
        pending = "" if self.info else "; other nodes' parts still missing, so the index is not written yet"
        return (f"wrote {plural(self.samples, 'sample')} in {len(self.shards)} {unit}{resumed} to "
                f"{self.out}; instance source: {kinds}; {self.skips.summary()}{see}{pending}")


def job_identity(job: SynthJob, synth: Synthesizer) -> dict:
    """Everything that decides the output bytes (not workers or nodes): kept as `_job.json`."""
    return {
        "codo_version": __version__,
        "format": {"kind": job.format, "prefix": SHARD_PREFIX, "image_format": job.image_format,
                   "views": len(job.config.view_sizes)},
        "seed": job.seed,
        "num_samples": job.num_samples,
        "shard_size": job.shard_size,
        "config": job.config.to_dict(),
        "source_identity": {
            "instances": source_identity(job.instances, synth.instances),
            "backgrounds": source_identity(job.backgrounds, synth.backgrounds),
        },
    }


def _old_outputs(out: Folder) -> list[str]:
    """Members of an earlier synth run in `out` (shards or a COCO export)."""
    if not out.exists():
        return []
    patterns = (f"{SHARD_PREFIX}-*.tar", temp_pattern(f"{SHARD_PREFIX}-*.tar"), f"{INDEX_DIR}/*.json",
                INFO_FILE, JOB_FILE)
    found = [name for pattern in patterns for name in out.names(pattern)]
    if not isinstance(out, UrlFolder):
        found += [p.relative_to(out.path).as_posix() for p in coco_export.outputs(out.path)]
    return sorted(found)


def _finished(job: SynthJob) -> int:
    """How many shards (COCO parts) of an earlier run --out holds: what --overwrite would discard."""
    if job.format == "coco":
        return len(list((job.folder.path / coco_export.PARTS).glob("part-*.json")))
    return len(job.folder.names(f"{SHARD_PREFIX}-*.tar"))


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
    on write, and the first shard would fail only after it was rendered."""
    bucket = out.root.split("/", 1)[0]
    if not out.fs.exists(bucket):
        raise InputError(f"--out {out}: bucket {bucket!r} does not exist (or is not visible with these "
                         "credentials); create it first")


def _check_out(out: Folder) -> None:
    """Refuse an --out that cannot be written, or is a non-empty folder holding no codo job (--overwrite
    never touches files that are not codo's)."""
    if isinstance(out, UrlFolder):
        with input_errors(f"--out {out}"):
            _check_bucket(out)
    else:
        _check_local(out.path)
    if out.exists() and not out.exists(JOB_FILE) and not _old_outputs(out):
        entries = out.names("*")
        if entries:
            more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
            raise InputError(f"--out {out} is a non-empty folder that is not a codo job (it holds "
                             f"{entries[0]!r}{more}); choose a new or empty directory "
                             "(--overwrite only replaces codo's own files)")


def _make_out(out: Folder) -> None:
    """Create a local --out (a prefix needs no creating); a place the checks could not foresee (a
    read-only mount, root on /proc) is an input error."""
    if not isinstance(out, UrlFolder):
        make_dir(out.path)


def prepare(job: SynthJob) -> tuple[Synthesizer, dict]:
    """Check `job.out`, open the sources, and check that `job.out` is new, the same job (resume), or
    replaced with --overwrite; else refuse. Writes nothing."""
    out = job.folder
    _check_out(out)
    synth = Synthesizer.from_specs(job.instances, job.backgrounds, job.config, job.seed)
    synth.check_usable()
    identity = job_identity(job, synth)
    if job.overwrite or not _old_outputs(out):
        return synth, identity
    unit = "part" if job.format == "coco" else "shard"
    check_same_job(job.out, read_json(out, JOB_FILE), identity, unit, _finished(job))
    return synth, identity


def _my_temp_files(out: Folder, job: SynthJob) -> list[str]:
    """Temporary files left by this node's killed runs: of its shards and their index entries (only it
    writes those; other nodes' may be in flight) unless a running process here writes them (a second job
    of this node rank, which finishes them itself), and of the job and info files when the process that
    wrote them on this machine has ended."""
    mine = {shard_name(s) for s in job.split.mine()}
    shards = [name for name in out.names(temp_pattern(f"{SHARD_PREFIX}-*.tar"))
              if temp_target(name, ".tar") in mine]
    entries = [name for name in out.names(f"{INDEX_DIR}/{temp_pattern(f'{SHARD_PREFIX}-*.json')}")
               if temp_target(name, ".json").removesuffix(".json") + ".tar" in mine]
    shared = [name for file in (JOB_FILE, INFO_FILE) for name in out.names(temp_pattern(file))
              if left_by_dead_process(name)]
    return [name for name in shards + entries if not in_flight_here(name)] + shared


def _sources_info(synth: Synthesizer, job: SynthJob) -> dict:
    """`_info.json`'s sources; the instances' sorted class names ('labels') are the vocabulary a
    supervised run on the shards classifies into (codo_train.classes)."""
    instances = {**synth.instances.describe(), "labels": synth.instances.labels}
    return {"instances": {"spec": resolve_spec(job.instances), **instances},
            "backgrounds": {"spec": resolve_spec(job.backgrounds), **synth.backgrounds.describe()}}


def _unit_done(job: SynthJob, unit: int) -> bool:
    """Whether shard (or COCO chunk) `unit` was finished by an earlier run."""
    if job.format == "coco":
        return coco_export.part_path(job.folder.path, unit).exists()
    return job.folder.exists(shard_name(unit))


def write_unit(state: tuple, unit: int) -> tuple[ShardStats, dict[str, str]]:
    """Render and write shard (or COCO chunk) `unit`, in whichever process runs it; returns what it
    wrote and the files that failed while rendering it."""
    synth, job, on_sample = state
    before = set(synth.render_skips.reasons)

    def samples():
        for i in job.split.members(unit):
            yield synth.sample(i)
            on_sample()

    def new_skips() -> dict[str, str]:
        return {p: r for p, r in synth.render_skips.reasons.items() if p not in before}

    if job.format == "coco":
        cat_ids = coco_export.category_ids([it.label for it in synth.instances.items])
        count = coco_export.write_chunk(job.folder.path, unit, samples(), cat_ids, job.config.jpeg_quality)
        return ShardStats(coco_export.part_path(job.folder.path, unit).name, count, 0, ""), new_skips()
    records = (encode_sample(s, job.seed, job.image_format, job.config.jpeg_quality) for s in samples())
    out = job.folder
    stats = write_shard(out, shard_name(unit), records, lambda st: write_entry(out, st, new_skips()))
    return stats, new_skips()


def _finish(job: SynthJob, synth: Synthesizer, identity: dict) -> dict | None:
    """`_info.json` (or COCO instances.json) once every shard of the job exists, else None."""
    sources = _sources_info(synth, job)
    if job.format == "coco":
        cats = coco_export.categories([it.label for it in synth.instances.items])
        return coco_export.finish(job.folder.path, job.split.count, cats, {**identity, "sources": sources})
    return finish_info(job.folder, identity, job.split.count, sources)


def run_synth(job: SynthJob, on_sample: Callable[[], None] = lambda: None,
              on_start: Callable[[int], None] = lambda n: None) -> SynthReport:
    """Write this node's missing shards (in `job.workers` processes), then `_info.json` if all exist."""
    synth, identity = prepare(job)
    out = job.folder
    _make_out(out)
    for old in (_old_outputs(out) if job.overwrite else []):
        out.remove(old)
    for tmp in _my_temp_files(out, job):
        out.remove(tmp)
    if read_json(out, JOB_FILE) is None:
        write_json(out, JOB_FILE, identity)
    mine = job.split.mine()
    done = [s for s in mine if _unit_done(job, s)]
    todo = [s for s in mine if s not in done]
    start_units(job.split, done, on_start, on_sample)
    stats = []
    for shard_stats, skips in run_units(write_unit, todo, (synth, job), job.workers, on_sample,
                                        lambda result: result[0].samples):
        synth.render_skips.merge(skips)
        stats.append(shard_stats)
    info = _finish(job, synth, identity)
    resumed = [ShardStats(shard_name(s), len(job.split.members(s)), 0, "") for s in done]
    skips = SkipLog()
    for log in (synth.instances.skipped, synth.backgrounds.skipped, synth.render_skips):
        skips.merge(log.reasons)
    return SynthReport(job.out, job.format, sorted(stats + resumed, key=lambda s: s.name), len(done),
                       synth.instances.cut_by_counts(), skips, info)


@dataclass
class Plan:
    """What a job would write, estimated from a short timed probe."""

    samples: int
    shards: int
    est_bytes: int
    est_seconds: float


def plan_synth(job: SynthJob, probe: int = 8) -> Plan:
    """Validate sources, config and output folder, time `probe` samples, and estimate; writes nothing."""
    synth, _ = prepare(job)
    n = min(probe, job.num_samples)
    t0 = time.perf_counter()
    size = sum(len(data) for i in range(n)
               for _, data in encode_sample(synth.sample(i), job.seed, job.image_format,
                                            job.config.jpeg_quality))
    per_sample = (time.perf_counter() - t0) / n
    mine = job.split.mine()
    samples = sum(len(job.split.members(s)) for s in mine)
    return Plan(samples, len(mine), int(size / n * samples * 1.01),
                per_sample * samples / min(job.workers, max(1, len(mine))))
