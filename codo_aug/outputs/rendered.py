"""What synth's outputs share: a unit is the samples `job.split` gives it, rendered in whichever process
writes it, with the files that failed while rendering them."""

from abc import abstractmethod
from typing import Iterator

from ..config import SynthConfig
from ..io.location import resolve_spec
from ..jobs import Output
from ..sample import Sample
from ..shards.writer import ShardStats


class RenderedOutput(Output):
    """A synth output: the skeleton's Output with its units rendered by the job's Synthesizer. State is
    (synth, job, on_sample); a unit's result is (ShardStats, {file: reason} skipped while rendering it)."""

    def write(self, state: tuple, unit: int) -> tuple[ShardStats, dict[str, str]]:
        synth, job, on_sample = state
        before = set(synth.render_skips.reasons)

        def samples() -> Iterator[Sample]:
            for i in job.split.members(unit):
                yield synth.sample(i)
                on_sample()

        def new_skips() -> dict[str, str]:
            return {p: r for p, r in synth.render_skips.reasons.items() if p not in before}

        return self.write_samples(unit, samples(), synth, job, new_skips), new_skips()

    def outputs(self) -> list[str]:
        """The files of an earlier synth job in the folder, whatever its format: a folder holds one job."""
        from . import FORMATS  # the registry imports this module

        if not self.folder.exists():
            return []
        return sorted({name for output in FORMATS.values() for name in output.own_files(self.folder)})

    def upgrade(self, old: dict) -> dict:
        """A job file with its synthesis settings under today's names (SynthConfig.upgrade)."""
        config = old.get("config")
        return {**old, "config": SynthConfig.upgrade(config)} if isinstance(config, dict) else old

    def items(self, result: tuple[ShardStats, dict[str, str]]) -> int:
        return result[0].samples

    @staticmethod
    @abstractmethod
    def own_files(folder) -> list[str]:
        """The files this format writes in `folder` (temporary files included)."""

    @abstractmethod
    def write_samples(self, unit: int, samples: Iterator[Sample], synth, job, new_skips) -> ShardStats:
        """Write `samples` as unit `unit`; `new_skips()` gives the files that failed while rendering them."""


def sources_info(synth, job) -> dict:
    """The final file's sources; the instances' sorted class names ('labels') are the vocabulary a
    supervised run on the output classifies into (codo_train.classes)."""
    instances = {**synth.instances.describe(), "labels": synth.instances.labels}
    return {"instances": {"spec": resolve_spec(job.instances), **instances},
            "backgrounds": {"spec": resolve_spec(job.backgrounds), **synth.backgrounds.describe()}}
