"""Checkpoints written atomically: a crash mid-write never leaves a broken `last.pt`."""

from pathlib import Path

import torch

from codo_aug.atomic import atomic_open
from codo_aug.errors import InputError


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save `obj` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        torch.save(obj, fh)


def read_torch_file(path: Path, what: str, weights_only: bool = False):
    """torch.load of `path` on the CPU; InputError naming the file (as `what`) when missing or unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise InputError(f"no {what} at {path}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise InputError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc})") from None


def load_checkpoint(path: Path) -> dict:
    """A codo checkpoint (a dict with 'model'); InputError naming the file when it is missing or unreadable."""
    ckpt = read_torch_file(path, "codo checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{path} is not a codo checkpoint (no 'model' weights)")
    return ckpt
