"""The synth job: sources + config + seed -> WebDataset shards (or a COCO set) in an output folder, local
or a prefix in object storage (s3://bucket/prefix: each shard uploaded whole once complete).

Shard s holds samples [s * shard_size, (s + 1) * shard_size); each shard is written whole by one
process, so the bytes do not depend on how many workers or machines share the job. A run that
stops halfway is finished by running the same command again: finished shards are kept, the rest
written. Node r of N writes the shards s with s % N == r.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import SynthConfig
from .io.identity import source_identity
from .io.storage import Folder, folder_at, is_url
from .jobs import Split, check_fields, check_out, check_resume, process_checks, run_job
from .outputs import FORMATS, RenderedOutput
from .pipeline import Synthesizer
from .plural import plural
from .shards.format import IMAGE_FORMATS, KEY_DIGITS, encode_sample
from .shards.writer import SHARD_PREFIX, ShardStats, shard_name
from .sources.base import CUT_BY
from .sources.skips import SkipLog
from .version import __version__

#: The most samples one job writes: every key has KEY_DIGITS digits.
MAX_SAMPLES = 10 ** KEY_DIGITS


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
            (1 <= self.num_samples <= MAX_SAMPLES, "num_samples",
             f"in 1..{MAX_SAMPLES} (keys have {KEY_DIGITS} digits, so they sort in sample order)"),
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
    def output(self) -> RenderedOutput:
        """The registered writer of `format` (outputs.FORMATS) on `folder`."""
        return FORMATS[self.format](self.folder)

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
        output = FORMATS[self.format]
        unit = f"{output.unit}(s)"
        resumed = f" ({self.resumed} already there)" if self.resumed else ""
        kinds = ", ".join(f"{self.cut_by[k]} {CUT_WORDS[k]}" for k in CUT_BY)
        see = f" (see {output.final_file})" if self.skips.total else ""
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


def prepare(job: SynthJob) -> tuple[Synthesizer, dict]:
    """Check `job.out`, open the sources, and check that `job.out` is new, the same job (resume), or
    replaced with --overwrite; else refuse. Writes nothing."""
    check_out(job.output)
    synth = Synthesizer.from_specs(job.instances, job.backgrounds, job.config, job.seed)
    synth.check_usable()
    identity = job_identity(job, synth)
    check_resume(job.output, identity, job.overwrite)
    return synth, identity


def run_synth(job: SynthJob, on_sample: Callable[[], None] = lambda: None,
              on_start: Callable[[int], None] = lambda n: None) -> SynthReport:
    """Write this node's missing shards (in `job.workers` processes), then `_info.json` if all exist."""
    synth, identity = prepare(job)
    run = run_job(job.output, identity, job.split, (synth, job), job.overwrite, job.workers, on_sample,
                  on_start)
    stats = []
    for shard_stats, skips in run.results:
        synth.render_skips.merge(skips)
        stats.append(shard_stats)
    resumed = [ShardStats(shard_name(s), len(job.split.members(s)), 0, "") for s in run.done]
    skips = SkipLog()
    for log in (synth.instances.skipped, synth.backgrounds.skipped, synth.render_skips):
        skips.merge(log.reasons)
    return SynthReport(job.out, job.format, sorted(stats + resumed, key=lambda s: s.name), len(run.done),
                       synth.instances.cut_by_counts(), skips, run.final)


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
