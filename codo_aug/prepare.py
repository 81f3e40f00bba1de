"""The prepare job: an instance or background source -> a prepared store in a folder
(codo_aug.sources.prepared), each item cut where the cut does not depend on the draw and resized by
the config's SizeRule, so that synthesis from it decodes nothing.

Part k holds the source's items [k * part_size, (k + 1) * part_size), less those that fail to decode,
written whole by one process (a temporary file, then a rename), so the store does not depend on how
many workers or machines made it. Running the same command again finishes a stopped job; node r of N
writes the parts k with k % N == r, and whichever run finds every part written writes the manifest.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .atomic import atomic_open, in_flight_here, left_by_dead_process, temp_pattern, temp_target
from .config import SynthConfig
from .errors import InputError
from .jobs import Split, check_fields, check_same_job, make_dir, process_checks, run_units, start_units
from .location import resolve_spec
from .shards.index import read_json, source_identity
from .shards.storage import Folder
from .shards.writer import write_json_atomic
from .sources.base import Source
from .sources.decode import BadImage, probe
from .sources.prepared import (CODECS, CUT, FORMAT, FORMAT_VERSION, MANIFEST, WHOLE, Entry, PartIndex,
                               PreparedSource, part_name)
from .sources.sizing import SizeRule, scaled_size
from .sources.skips import SkipLog
from .sources.spec import ROLES, open_source
from .version import __version__

JOB_FILE = "prepare-job.json"
#: The random rect (area, log_ratio, u, v) passed for cuts that do not use it (alpha, mask, box).
_UNUSED_RECT = (1.0, 0.0, 0.5, 0.5)


@dataclass(frozen=True)
class PrepareJob:
    """What `codo-aug prepare` was asked to make, and by how many processes and machines. The sizes,
    minimum sides and cutout mode come from `config`, as for `codo-aug synth`."""

    spec: str
    role: str
    out: Path
    config: SynthConfig = SynthConfig()
    max_side: int | None = None
    codec: str = "raw"
    part_size: int = 1000
    workers: int = 1
    num_nodes: int = 1
    node_rank: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.role in ROLES, "role", f"one of {', '.join(ROLES)}"),
            (self.max_side is None or self.max_side >= self.min_side, "max_side",
             f">= {self.min_side} ({self.min_side_setting}: a store of smaller items would be all skips)"),
            (self.codec in CODECS, "codec", f"one of {', '.join(CODECS)}"),
            (self.part_size >= 1, "part_size", ">= 1"),
            *process_checks(self.workers, self.num_nodes, self.node_rank),
        ]
        check_fields(self, checks)

    @property
    def min_side_setting(self) -> str:
        """The SynthConfig field that bounds this role's shorter side."""
        return "min_instance_side" if self.role == "instances" else "min_background_side"

    @property
    def min_side(self) -> int:
        return getattr(self.config, self.min_side_setting)

    @property
    def cutout_mode(self) -> str | None:
        return self.config.cutout if self.role == "instances" else None

    @property
    def rule(self) -> SizeRule:
        return SizeRule.from_config(self.config, self.max_side)

    def split(self, items: int) -> Split:
        """A source of `items` items in parts, and the parts this node writes."""
        return Split(items, self.part_size, self.num_nodes, self.node_rank)


def prepare_item(source: Source, i: int, job: PrepareJob) -> tuple[np.ndarray, str, tuple[int, int]]:
    """Item i's pixels to store (the cut where it does not depend on the draw: alpha, COCO mask, xml box,
    GrabCut of the box; else the whole image), resized by the job's SizeRule with cv2's area averaging,
    never enlarged; their form, and their original (w, h); BadImage as the source raises."""
    rule, how = job.rule, job.cutout_mode
    if job.role == "backgrounds":
        form, pixels = WHOLE, source.background(i)
    elif (whole := source.rect_image(i, how)) is not None:
        form, pixels = WHOLE, whole
    else:
        form, pixels = CUT, source.cutout(i, _UNUSED_RECT, how)
    h, w = pixels.shape[:2]
    if job.role == "backgrounds":
        scale = rule.background_scale(w, h)
    else:
        crops = job.config.crops_views(source.rectangular(i, how))
        scale = rule.instance_scale(w, h, crops, form == WHOLE)
    size = scaled_size(w, h, scale)
    if size != (w, h):
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return pixels, form, (w, h)


def _part_done(out: Path, part: int) -> PartIndex | None:
    """Part `part`'s index when both its files are whole, else None."""
    index, blob = out / part_name(part, "json"), out / part_name(part, "bin")
    data = read_json(Folder(out), index.name) if blob.is_file() else None
    try:
        done = None if data is None else PartIndex.from_dict(data)
    except (KeyError, TypeError):  # an index of another format: written again
        return None
    return done if done is not None and done.bytes == blob.stat().st_size else None


def write_part(state: tuple, part: int) -> tuple[int, int, dict[str, str]]:
    """Write part `part` (its pixels, then its index), in whichever process runs it; returns the part,
    how many items it holds and the files that failed."""
    source, job, on_item = state
    codec = CODECS[job.codec]
    items, skips, offset = [], {}, 0
    with atomic_open(job.out / part_name(part, "bin")) as fh:
        for i in job.split(len(source)).members(part):
            try:
                pixels, form, size = prepare_item(source, i, job)
                header = probe(str(source.root / source.items[i].path))
            except BadImage as bad:
                skips.setdefault(bad.path, bad.reason)
                on_item()
                continue
            data = codec.encode(pixels)
            fh.write(data)
            items.append((source.items[i], Entry(part, offset, len(data), pixels.shape, form, size,
                                                 (header.width, header.height))))
            offset += len(data)
            on_item()
    index = PartIndex(part, offset, tuple(items), skips)
    write_json_atomic(job.out / part_name(part, "json"), index.to_dict())
    return part, len(items), skips


def job_identity(job: PrepareJob, source: Source) -> dict:
    """Everything that decides the store's bytes (not workers or nodes): kept as JOB_FILE."""
    return {"codo_version": __version__, "format": FORMAT, "format_version": FORMAT_VERSION,
            "role": job.role, "cutout": job.cutout_mode, "view_crop": job.config.view_crop,
            "codec": job.codec, "part_size": job.part_size, "min_side": job.min_side,
            "rule": job.rule.to_dict(), "source_identity": source_identity(job.spec, source)}


def _store_files(out: Path) -> list[Path]:
    """What a prepare job writes in `out`, temporary files of a killed run included."""
    names = (MANIFEST, JOB_FILE, "part-*.bin", "part-*.json", temp_pattern("part-*"), temp_pattern(JOB_FILE),
             temp_pattern(MANIFEST))
    return sorted({p for pattern in names for p in out.glob(pattern)})


def _check_out(job: PrepareJob, identity: dict) -> None:
    """Refuse an --out that is a file, a folder of something else, or a different prepare job (unless
    --overwrite, which replaces only a prepare job's own files)."""
    out = job.out
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    if not out.exists():
        return
    ours = _store_files(out)
    if not ours and any(out.iterdir()):
        raise InputError(f"--out {out} is a non-empty folder that is not a prepared store; choose a new or "
                         "empty directory (--overwrite only replaces a store's own files)")
    if job.overwrite or not ours:
        return
    done = len(list(out.glob("part-*.bin")))
    check_same_job(out, read_json(Folder(out), JOB_FILE), identity, "part", done, "prepare ")


def _start(job: PrepareJob, identity: dict) -> None:
    """Create --out; remove an old job's files (--overwrite) or this node's leftover temporary files
    (of its parts, unless a running process here writes them: a second job of this node rank; of the job
    file and manifest when the process that wrote them here has ended)."""
    make_dir(job.out)
    if job.overwrite:
        for path in _store_files(job.out):
            path.unlink()
    suffixes = ("bin", "json")
    mine = {part_name(part, suffix) for part in job.split(identity["source_identity"]["items"]).mine()
            for suffix in suffixes}
    for tmp in job.out.glob(temp_pattern("part-*")):  # one listing, whatever the number of parts
        ours = any(temp_target(tmp.name, f".{suffix}") in mine for suffix in suffixes)
        if ours and not in_flight_here(tmp.name):
            tmp.unlink(missing_ok=True)
    for name in (JOB_FILE, MANIFEST):
        for tmp in job.out.glob(temp_pattern(name)):
            if left_by_dead_process(tmp.name):
                tmp.unlink(missing_ok=True)
    if not (job.out / JOB_FILE).is_file():
        write_json_atomic(job.out / JOB_FILE, identity)


def finish_manifest(job: PrepareJob, source: Source, identity: dict) -> dict | None:
    """Write the manifest once every part is written; None while some are missing."""
    indexes = [_part_done(job.out, k) for k in range(job.split(len(source)).count)]
    if any(index is None for index in indexes):
        return None
    skips = SkipLog(dict(source.skipped.reasons))
    for index in indexes:
        skips.merge(index.skipped)
    if not any(index.items for index in indexes):  # an empty store would fail only later, in synth
        for path in _store_files(job.out):
            path.unlink(missing_ok=True)  # another node may be removing them too
        raise InputError(f"no item of {job.spec} could be prepared: {skips.summary()}; nothing written")
    manifest = {**identity, "items": sum(len(index.items) for index in indexes),
                "parts": [{"items": len(index.items), "bytes": index.bytes} for index in indexes],
                "source": {"spec": resolve_spec(job.spec), **source.describe()},
                "skipped": dict(sorted(skips.reasons.items())), "skipped_summary": skips.to_dict()}
    write_json_atomic(job.out / MANIFEST, manifest)
    return manifest


@dataclass
class PrepareReport:
    """What this run found and wrote: items stored in this node's parts (now or before), parts written
    now and before, the skips seen (the source's and this node's parts'), and the manifest when done."""

    out: Path
    role: str
    items: int
    written: int
    resumed: int
    skips: SkipLog
    manifest: dict | None

    def summary(self) -> str:
        """The one line `codo-aug prepare` prints."""
        resumed = f" ({self.resumed} already there)" if self.resumed else ""
        see = f" (see {MANIFEST})" if self.skips.total and self.manifest else ""
        pending = "" if self.manifest else (f"; other nodes' parts still missing, so {MANIFEST} is not "
                                            "written yet")
        stored = sum(p["bytes"] for p in self.manifest["parts"]) if self.manifest else 0
        size = f" ({stored / 1e6:.1f} MB in all)" if self.manifest else ""
        return (f"prepared {self.items} {self.role} in {self.written + self.resumed} part(s){resumed} to "
                f"{self.out}{size}; {self.skips.summary()}{see}{pending}")


def run_prepare(job: PrepareJob, on_item: Callable[[], None] = lambda: None,
                on_start: Callable[[int], None] = lambda n: None) -> PrepareReport:
    """Write this node's missing parts (in `job.workers` processes), then the manifest if all exist."""
    source = open_source(job.spec, job.role, job.min_side)
    if isinstance(source, PreparedSource):
        raise InputError(f"{job.spec} is already a prepared store; prepare its original source instead")
    identity = job_identity(job, source)
    _check_out(job, identity)
    _start(job, identity)
    split = job.split(len(source))
    done = {k: index for k in split.mine() if (index := _part_done(job.out, k)) is not None}
    todo = [k for k in split.mine() if k not in done]
    start_units(split, list(done), on_start, on_item)
    skips = SkipLog(dict(source.skipped.reasons))
    stored = sum(len(index.items) for index in done.values())
    for index in done.values():
        skips.merge(index.skipped)
    for _, count, part_skips in run_units(write_part, todo, (source, job), job.workers, on_item,
                                          lambda result: len(split.members(result[0]))):
        stored += count
        skips.merge(part_skips)
    manifest = finish_manifest(job, source, identity)
    return PrepareReport(job.out, job.role, stored, len(todo), len(done), skips, manifest)
