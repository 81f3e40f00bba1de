"""Checkpoints written atomically: a crash mid-write never leaves a broken `last.pt`."""

from pathlib import Path

import torch

from codo_aug.atomic import atomic_open


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save `obj` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        torch.save(obj, fh)
