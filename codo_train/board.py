"""TensorBoard event files of a run (`--tensorboard`, RUN/tensorboard): every number of metrics.jsonl,
nested fields as 'group/key' (drift/stem, target_drift/fpn, ...), through torch.utils.tensorboard."""

from pathlib import Path
from typing import Iterator

from codo_aug.errors import InputError

INSTALL_HINT = "pip install 'codo[tensorboard]'"


def scalars(record: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """(tag, value) for every number in `record` but its step, nested dicts as 'key/subkey'."""
    for key, value in record.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalars(value, tag + "/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and tag != "step":
            yield tag, float(value)


class TensorBoard:
    """Writes metric records to `folder` when `enabled` (else does nothing); a context manager.

    The writer opens at the first record, purging events from that step on: a resumed run replaces what
    a killed one logged past its last checkpoint, as metrics.jsonl does.
    """

    def __init__(self, folder: Path, enabled: bool):
        self.folder = folder
        self._writer = None
        self._writer_class = _summary_writer() if enabled else None

    def log(self, record: dict) -> None:
        if self._writer_class is None:
            return
        if self._writer is None:
            self._writer = self._writer_class(str(self.folder), purge_step=record["step"])
        for tag, value in scalars(record):
            self._writer.add_scalar(tag, value, record["step"])
        self._writer.flush()

    def __enter__(self) -> "TensorBoard":
        return self

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()


def _summary_writer() -> type:
    """torch's SummaryWriter; InputError with the install hint when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}") from None
    return SummaryWriter
