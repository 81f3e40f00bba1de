"""The prepare job: an instance or background source -> a prepared store in a folder or an object-storage
prefix (codo_aug.sources.prepared), each item cut where the cut does not depend on the draw and resized by
the config's SizeRule, so that synthesis from it decodes nothing.

Part k holds the source's items [k * part_size, (k + 1) * part_size), less those that fail to decode,
written whole by one process (a temporary file renamed into place, or an object uploaded whole), so the
store does not depend on how many workers or machines made it. Running the same command again finishes
a stopped job; node r of N writes the parts k with k % N == r, and whichever run finds every part written
writes the manifest.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .config import SynthConfig
from .errors import InputError
from .io.atomic import temp_pattern
from .io.identity import source_identity
from .io.jsonfiles import read_json, write_json
from .io.location import resolve_spec
from .io.storage import Folder, folder_at
from .jobs import Output, Split, check_fields, check_out, check_resume, process_checks, run_job
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
    out: Path | str
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

    @property
    def folder(self) -> Folder:
        """Where the store goes: a local folder or an object-storage prefix."""
        return folder_at(self.out)

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


def job_identity(job: PrepareJob, source: Source) -> dict:
    """Everything that decides the store's bytes (not workers or nodes): kept as JOB_FILE."""
    return {"codo_version": __version__, "format": FORMAT, "format_version": FORMAT_VERSION,
            "role": job.role, "cutout": job.cutout_mode, "view_crop": job.config.view_crop,
            "codec": job.codec, "part_size": job.part_size, "min_side": job.min_side,
            "rule": job.rule.to_dict(), "source_identity": source_identity(job.spec, source)}


class StoreOutput(Output):
    """The prepared store as the job skeleton's Output: part k is its pixel file and then its index; the
    manifest is written once every part exists. State is (source, job, on_item)."""

    job_file, final_file, unit, kind = JOB_FILE, MANIFEST, "part", "prepare "
    what, owner = "a prepared store", "a store's own files"

    def outputs(self) -> list[str]:
        if not self.folder.exists():
            return []
        names = (MANIFEST, JOB_FILE, "part-*.bin", "part-*.json", temp_pattern("part-*"),
                 temp_pattern(JOB_FILE), temp_pattern(MANIFEST))
        return sorted({name for pattern in names for name in self.folder.names(pattern)})

    def __init__(self, folder: Folder):
        super().__init__(folder)
        self._parts: dict[int, PartIndex] = {}  # the finished parts' indexes, read once

    def finished(self) -> int:
        return len(self.folder.names("part-*.bin"))

    def part(self, part: int) -> PartIndex | None:
        """Part `part`'s index when both its files are whole, else None."""
        if part not in self._parts and (index := self._read_part(part)) is not None:
            self._parts[part] = index
        return self._parts.get(part)

    def _read_part(self, part: int) -> PartIndex | None:
        size = self.folder.size(part_name(part, "bin"))
        data = read_json(self.folder, part_name(part, "json")) if size is not None else None
        try:
            done = None if data is None else PartIndex.from_dict(data)
        except (KeyError, TypeError):  # an index of another format: written again
            return None
        return done if done is not None and done.bytes == size else None

    def done(self, unit: int) -> bool:
        return self.part(unit) is not None

    def unit_files(self, unit: int) -> list[str]:
        return [part_name(unit, "bin"), part_name(unit, "json")]

    def write(self, state: tuple, unit: int) -> tuple[int, int, dict[str, str], int]:
        """Write part `unit` (its pixels, then its index); returns it, the items it stores, the files that
        failed and how many items of the source it covers."""
        source, job, on_item = state
        codec = CODECS[job.codec]
        items, skips, offset = [], {}, 0
        with self.folder.writer(part_name(unit, "bin")) as fh:
            members = job.split(len(source)).members(unit)
            for i in members:
                try:
                    pixels, form, size = prepare_item(source, i, job)
                    header = probe(str(source.root / source.items[i].path))
                except BadImage as bad:
                    skips.setdefault(bad.path, bad.reason)
                    on_item()
                    continue
                data = codec.encode(pixels)
                fh.write(data)
                items.append((source.items[i], Entry(unit, offset, len(data), pixels.shape, form, size,
                                                     (header.width, header.height))))
                offset += len(data)
                on_item()
        index = PartIndex(unit, offset, tuple(items), skips)
        write_json(self.folder, part_name(unit, "json"), index.to_dict())
        return unit, len(items), skips, len(members)

    def items(self, result: tuple[int, int, dict[str, str], int]) -> int:
        return result[3]

    def finish(self, state: tuple, identity: dict) -> dict | None:
        """Write the manifest once every part is written; None while some are missing."""
        source, job = state
        indexes = [self.part(k) for k in range(job.split(len(source)).count)]
        if any(index is None for index in indexes):
            return None
        skips = SkipLog(dict(source.skipped.reasons))
        for index in indexes:
            skips.merge(index.skipped)
        if not any(index.items for index in indexes):  # an empty store would fail only later, in synth
            for name in self.outputs():
                self.folder.remove(name)  # another node may be removing them too
            raise InputError(f"no item of {job.spec} could be prepared: {skips.summary()}; nothing written")
        manifest = {**identity, "items": sum(len(index.items) for index in indexes),
                    "parts": [{"items": len(index.items), "bytes": index.bytes} for index in indexes],
                    "source": {"spec": resolve_spec(job.spec), **source.describe()},
                    "skipped": dict(sorted(skips.reasons.items())), "skipped_summary": skips.to_dict()}
        write_json(self.folder, MANIFEST, manifest)
        return manifest


@dataclass
class PrepareReport:
    """What this run found and wrote: items stored in this node's parts (now or before), parts written
    now and before, the skips seen (the source's and this node's parts'), and the manifest when done."""

    out: str
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
    output = StoreOutput(job.folder)
    check_out(output)
    check_resume(output, identity, job.overwrite)
    run = run_job(output, identity, job.split(len(source)), (source, job), job.overwrite, job.workers,
                  on_item, on_start)
    skips = SkipLog(dict(source.skipped.reasons))
    stored = 0
    for k in run.done:
        index = output.part(k)
        stored += len(index.items)
        skips.merge(index.skipped)
    for _, count, part_skips, _ in run.results:
        stored += count
        skips.merge(part_skips)
    return PrepareReport(str(output.folder), job.role, stored, len(run.results), len(run.done), skips,
                         run.final)
