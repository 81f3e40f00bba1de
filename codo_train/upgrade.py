"""Checkpoints written before the model config, in today's form: their ModelConfig from the run config they
hold, InfoNCE's queues moved from the model's state (where they were kept) to the loss's, and each
objective's own changes (Objective.upgrade_legacy: the supervised model's dropped weights). InfoNCE's
queue buffers, once named `keys` (MoCo's word), are `targets` in either form."""

import re

import torch

from .config import TrainConfig
from .objectives import objective_class

_OLD_QUEUE = re.compile(r"^(queues\.[^.]+\.)keys$")


def queue_names(state: dict) -> dict:
    """`state` with InfoNCE's queue buffers `queues.BRANCH.keys` under their name of today, `.targets`."""
    return {_OLD_QUEUE.sub(r"\1targets", k): v for k, v in state.items()}


def upgrade(ckpt: dict) -> dict:
    """`ckpt` with 'model_config' and 'loss' (as a checkpoint written now has them): as it is where it has
    them, else made from its run config ('config'; defaults where it has none)."""
    if "model_config" in ckpt:
        return {**ckpt, "loss": queue_names(ckpt.get("loss", {}))}
    return _from_run_config({**ckpt, "model": queue_names(ckpt["model"])})


def _from_run_config(ckpt: dict) -> dict:
    """A checkpoint without a model config, given one made from its run config, its loss's state apart."""
    settings = ckpt.get("config", {})
    cfg = TrainConfig.from_run(settings)
    objective = objective_class(cfg.objective)
    config = objective.model_config(cfg, settings.get("classes"))
    with torch.device("meta"):  # the names alone: nothing drawn from the RNG, no memory
        own = objective(cfg, config).loss.state_dict().keys()
    model = {k: v for k, v in ckpt["model"].items() if k not in own}
    loss = {k: v for k, v in ckpt["model"].items() if k in own}
    return objective.upgrade_legacy({**ckpt, "model_config": config.to_dict(), "model": model, "loss": loss})
