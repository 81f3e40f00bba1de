"""The run folder: config.json, metrics.jsonl and checkpoints/last.pt; the checkpoint's content and
restore; the "same run?" check. Checkpoints are written atomically: a crash or a full disk mid-write
never leaves a broken `last.pt`, and `--overwrite` removes codo's own files only."""

import dataclasses
import errno
import json
import math
import shutil
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from codo_aug.io.atomic import atomic_open
from codo_aug.config import SynthConfig
from codo_aug.errors import InputError, RunError
from codo_aug.io.location import resolve_location, resolve_spec

from .config import BEFORE_THE_SETTING, TrainConfig
from .data import DataPosition
from .upgrade import upgrade

if TYPE_CHECKING:
    from .objectives.base import Objective

CHECKPOINT = Path("checkpoints") / "last.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"  # event files, with --tensorboard
RUN_FILES = (CONFIG, METRICS, str(CHECKPOINT))
#: Settings that do not change what a run computes: a resumed run may differ in them (`out` too: the
#: checkpoint found in --out is that run's, wherever the folder was moved or copied).
_VOLATILE = ("out", "overwrite", "save_every", "max_bad_fraction", "health_every", "log_every", "tensorboard",
             "prefetch", "compile", "verify_shards")
#: Keys every config.json codo writes holds: what marks a folder as a codo run.
_CONFIG_KEYS = {"out", "steps", "arch", "batch_size"}
#: Errors of a folder the user can fix: no permission, a file in the way, a read-only file system.
_USER_ERRNOS = (errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EROFS)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: Where a run reads and writes: stored and compared resolved, so that spelling does not make another run.
_LOCATIONS = {"out": resolve_location, "shards": resolve_location, "instances": resolve_spec,
              "backgrounds": resolve_spec}


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save `obj` to `path` through a temporary file and a rename; RunError when the disk is
    full, with the file at `path` as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_open(path) as fh:
            torch.save(obj, fh)
    except (OSError, RuntimeError) as exc:
        cause = exc if isinstance(exc, OSError) else exc.__context__  # torch's zip writer wraps the OSError
        if isinstance(cause, OSError) and cause.errno in _NO_SPACE:
            raise RunError(f"no space left on device while writing {path}; "
                           "the last good checkpoint (if any) is kept") from None
        raise


def read_torch_file(path: Path, what: str, weights_only: bool = False):
    """torch.load of `path` on the CPU; InputError naming the file (as `what`) when missing or unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except FileNotFoundError:
        raise InputError(f"no {what} at {path}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise InputError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc})") from None


def load_checkpoint(path: Path) -> dict:
    """A codo checkpoint (a dict with 'model'), one written before the model config in today's form
    (upgrade.py); InputError naming the file when missing or unreadable."""
    ckpt = read_torch_file(path, "codo checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{path} is not a codo checkpoint (no 'model' weights)")
    return upgrade(ckpt)


def load_run_checkpoint(path: Path) -> dict:
    """load_checkpoint of `path`: a checkpoint file, or a run folder (its checkpoints/last.pt)."""
    return load_checkpoint(path / CHECKPOINT if path.is_dir() else path)


def is_codo_run(out: Path) -> bool:
    """Whether `out` holds a codo run: a config.json that codo wrote."""
    try:
        config = json.loads((out / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and _CONFIG_KEYS <= config.keys()


@contextmanager
def _folder_errors(out: Path) -> Iterator[None]:
    """OSErrors the user can fix, as a one-line InputError naming --out."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _USER_ERRNOS:
            raise
        raise InputError(f"--out {out}: cannot write the run there ({exc.strerror}: {exc.filename})") \
            from None


def _with_defaults(config: dict) -> dict:
    """A checkpoint's run config with the settings it predates at their defaults (and so its synth table)."""
    filled = {**{f.name: f.default for f in dataclasses.fields(TrainConfig)}, **BEFORE_THE_SETTING, **config}
    if "synth" in config:
        filled["synth"] = {**SynthConfig().to_dict(), **SynthConfig.upgrade(config["synth"])}
    return filled


def resolve_locations(config: dict) -> dict:
    """A run config with its folder, shards and sources resolved (codo_aug.io.location): the same whether they
    were given relative, absolute, with a trailing slash or from another working directory."""
    return {k: _LOCATIONS[k](v) if k in _LOCATIONS and isinstance(v, str) else v for k, v in config.items()}


def _refusal(out: Path, ckpt: dict, differs: list[str], old: dict, new: dict) -> str:
    """Why `out` is not this run and what to do: resume it, start anew elsewhere, or discard it. Other
    steps are a new run: the learning rate's warm-up and cosine and the target momentum span the total."""
    names = ", ".join(differs)
    discard = f"pass --overwrite (discards its checkpoint at step {ckpt.get('step')})"
    if "steps" not in differs:
        return (f"--out {out} holds a different run (differs in: {names}); run the same command to resume "
                f"it, or choose a new directory or {discard}")
    same = f"give --steps {old['steps']}" if differs == ["steps"] else "run the same command"
    return (f"--out {out} holds a different run (differs in: {names}): its learning-rate warm-up and "
            f"cosine and its target momentum span its {old['steps']} steps, so {new['steps']} steps is a "
            f"new run; {same} to resume it, or a new --out to train {new['steps']} steps from the start, "
            f"or {discard}")


def _same_run(out: Path, ckpt: dict, run_config: dict) -> None:
    old, new = ({k: v for k, v in resolve_locations(c).items() if k not in _VOLATILE}
                for c in (_with_defaults(ckpt.get("config", {})), run_config))
    differs = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if differs:
        raise InputError(_refusal(out, ckpt, differs, old, new))


def _resume_or_clear(out: Path, overwrite: bool, run_config: dict) -> dict | None:
    """The checkpoint of this run in `out`, if any and not `overwrite`; else codo's files there removed."""
    if (out / CHECKPOINT).exists() and not overwrite:
        ckpt = load_checkpoint(out / CHECKPOINT)
        _same_run(out, ckpt, run_config)
        return ckpt
    for name in RUN_FILES:  # with --overwrite, or a run killed before its first checkpoint
        (out / name).unlink(missing_ok=True)
    return None


def prepare_run(out: Path, overwrite: bool, run_config: dict, record: dict) -> dict | None:
    """Make `out` ready and write its config.json (`record`); returns the checkpoint to resume from when
    `out` holds this run. A non-empty folder that is not a codo run is refused, even with `overwrite`."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    with _folder_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()) and not is_codo_run(out):
            raise InputError(f"--out {out} is a non-empty folder that is not a codo run; "
                             "choose a new or an empty one")
        ckpt = _resume_or_clear(out, overwrite, run_config)
        (out / CONFIG).write_text(json.dumps(resolve_locations(record), indent=2) + "\n")
        (out / CHECKPOINT).parent.mkdir(exist_ok=True)
    return ckpt


def discard_unstarted(out: Path) -> None:
    """After a failure, undo the run folder `out` that this run made when nothing in it is worth keeping
    (no checkpoint, no logged step): codo's own files, then the folder if that leaves it empty."""
    metrics = out / METRICS
    if not out.is_dir() or (out / CHECKPOINT).exists() or (metrics.exists() and metrics.stat().st_size):
        return
    for name in (CONFIG, METRICS):  # tidying up must not hide the error that stopped the run
        with suppress(OSError):
            (out / name).unlink()
    shutil.rmtree(out / TENSORBOARD, ignore_errors=True)
    for folder in (out / CHECKPOINT.parent, out):
        with suppress(OSError):  # missing, or not empty: something else is in it, and stays
            folder.rmdir()


def checkpoint_state(model: torch.nn.Module, objective: "Objective", opt: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler, run_config: dict, step: int, positions: list[dict]
                     ) -> dict:
    """Everything a resumed run needs to continue exactly: weights, the loss's state, optimizer, RNG and data
    position; and the model config, all that export, probe and health rebuild the model from."""
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {"step": step, "config": resolve_locations(run_config), "model_config": objective.config.to_dict(),
            "model": model.state_dict(), "loss": objective.loss.state_dict(), "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict(), "rng": rng, "data": positions}


def restore(ckpt: dict, model: torch.nn.Module, loss: torch.nn.Module, opt: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler, rank: int) -> tuple[int, DataPosition]:
    """Load `ckpt` into the model, loss, optimizer, scaler and RNG; its step and this rank's data position."""
    model.load_state_dict(ckpt["model"])
    loss.load_state_dict(ckpt["loss"])
    opt.load_state_dict(ckpt["optimizer"])
    scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["cpu"])
    if "cuda" in ckpt["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
    return ckpt["step"], DataPosition.from_dict(ckpt["data"][rank], ckpt["config"]["batch_size"])


def check_world(ckpt: dict | None, world: int) -> None:
    """InputError unless `ckpt` (if any) was written by `world` processes."""
    if ckpt is not None and len(ckpt["data"]) != world:
        raise InputError(f"the checkpoint was written by {len(ckpt['data'])} process(es); resume it with "
                         f"the same number (this run has {world})")


def keep_metrics_until(path: Path, step: int) -> float:
    """Drop metric lines past `step` (written after the checkpoint a run resumes from); the last loss kept."""
    if not path.exists():
        return math.nan
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    rows = [r for r in rows if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows[-1]["loss"] if rows else math.nan
