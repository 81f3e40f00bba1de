"""The synth job: sources + config + seed -> WebDataset shards and `_info.json` in an output folder."""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import SynthConfig
from .errors import InputError
from .pipeline import Synthesizer
from .shards.format import IMAGE_FORMATS, encode_sample
from .shards.writer import INFO_FILE, SHARD_PREFIX, ShardStats, write_json_atomic, write_shards
from .version import __version__


@dataclass(frozen=True)
class SynthJob:
    """What `codo-aug synth` was asked to make."""

    out: Path
    num_samples: int = 1000
    seed: int = 0
    instances: str = "sample"
    backgrounds: str = "sample"
    shard_size: int = 1000
    image_format: str = "jpg"
    config: SynthConfig = SynthConfig()
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise InputError(f"invalid num_samples={self.num_samples}: must be >= 1")
        if self.seed < 0:
            raise InputError(f"invalid seed={self.seed}: must be >= 0")
        if self.shard_size < 1:
            raise InputError(f"invalid shard_size={self.shard_size}: must be >= 1")
        if self.image_format not in IMAGE_FORMATS:
            raise InputError(f"invalid image_format={self.image_format!r}: must be one of {', '.join(IMAGE_FORMATS)}")


@dataclass
class SynthReport:
    """What a finished synth job wrote and skipped."""

    shards: list[ShardStats]
    info: dict

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.shards)

    @property
    def skipped(self) -> int:
        return sum(v["skipped"]["total"] for v in self.info["sources"].values()) + self.info["render_skipped"]["total"]


def _old_outputs(out: Path) -> list[Path]:
    """Files of an earlier synth run in `out`: shards, their temporaries and _info.json."""
    if not out.is_dir():
        return []
    return sorted([*out.glob(f"{SHARD_PREFIX}-*.tar"), *out.glob(f".{SHARD_PREFIX}-*.tar.tmp"), *out.glob(INFO_FILE)])


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    if _old_outputs(out) and not overwrite:
        raise InputError(f"--out {out} already holds shards; choose a new directory or pass --overwrite")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_synth(job: SynthJob, on_sample: Callable[[], None] = lambda: None,
              on_start: Callable[[int], None] = lambda n: None) -> SynthReport:
    """Open the sources, render `job.num_samples` samples into shards, then write `_info.json`."""
    _check_out(job.out, job.overwrite)
    synth = Synthesizer.from_specs(job.instances, job.backgrounds, job.config, job.seed)
    instances, backgrounds = synth.instances, synth.backgrounds
    for old in _old_outputs(job.out):  # only now that the inputs are known to be good
        old.unlink()
    job.out.mkdir(parents=True, exist_ok=True)
    on_start(job.num_samples)

    def encode(i: int):
        return encode_sample(synth.sample(i), job.seed, job.image_format, job.config.jpeg_quality)

    shards = write_shards(job.out, job.num_samples, job.shard_size, encode, on_sample)
    info = {
        "codo_version": __version__,
        "format": {"prefix": SHARD_PREFIX, "image_format": job.image_format, "views": len(job.config.view_sizes)},
        "seed": job.seed,
        "num_samples": job.num_samples,
        "shard_size": job.shard_size,
        "config": job.config.to_dict(),
        "sources": {
            "instances": {"spec": job.instances, **instances.describe()},
            "backgrounds": {"spec": job.backgrounds, **backgrounds.describe()},
        },
        "render_skipped": synth.render_skips.to_dict(),
        "shards": [{"name": s.name, "samples": s.samples, "bytes": s.bytes, "sha256": _sha256(job.out / s.name)}
                   for s in shards],
    }
    write_json_atomic(job.out / INFO_FILE, info)
    return SynthReport(shards, info)
