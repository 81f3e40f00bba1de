"""synth's WebDataset output: shard k is `codo-%06d.tar` with its index entry `_index/codo-%06d.json`
(written before the shard appears), and `_info.json` once every shard exists (codo_aug.shards)."""

from typing import Iterator

from ..io.atomic import temp_pattern
from ..sample import Sample
from ..shards.format import encode_sample
from ..shards.index import INDEX_DIR, JOB_FILE, finish_info, write_entry
from ..shards.writer import INFO_FILE, SHARD_PREFIX, ShardStats, shard_name, write_shard
from .rendered import RenderedOutput, sources_info


def _entry_name(unit: int) -> str:
    return f"{INDEX_DIR}/{shard_name(unit).replace('.tar', '.json')}"


class WebDatasetOutput(RenderedOutput):
    """Shards of `shard_size` samples in a folder or an object-storage prefix."""

    job_file, final_file, unit = JOB_FILE, INFO_FILE, "shard"

    @staticmethod
    def own_files(folder) -> list[str]:
        patterns = (f"{SHARD_PREFIX}-*.tar", temp_pattern(f"{SHARD_PREFIX}-*.tar"), f"{INDEX_DIR}/*.json",
                    INFO_FILE, JOB_FILE)
        return [name for pattern in patterns for name in folder.names(pattern)]

    def finished(self) -> int:
        return len(self.folder.names(f"{SHARD_PREFIX}-*.tar"))

    def done(self, unit: int) -> bool:
        return self.folder.exists(shard_name(unit))

    def unit_files(self, unit: int) -> list[str]:
        return [shard_name(unit), _entry_name(unit)]

    def write_samples(self, unit: int, samples: Iterator[Sample], synth, job, new_skips) -> ShardStats:
        records = (encode_sample(s, job.seed, job.image_format, job.config.jpeg_quality) for s in samples)
        return write_shard(self.folder, shard_name(unit), records,
                           lambda stats: write_entry(self.folder, stats, new_skips()))

    def finish(self, state: tuple, identity: dict) -> dict | None:
        synth, job = state
        return finish_info(self.folder, identity, job.split.count, sources_info(synth, job))
