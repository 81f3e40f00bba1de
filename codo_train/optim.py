"""Optimizers and their parameter groups: BN parameters and biases get no weight decay (and, under
LARS, no trust-ratio adaptation), as in BYOL and SoCo; and the warning for a LARS run too gentle to
move its weights."""

import logging

import torch
from torch import nn

from .config import TrainConfig
from .schedules import lr_at

log = logging.getLogger(__name__)

#: Heavy-ball momentum of SGD and LARS (SimSiam, BYOL, SoCo).
MOMENTUM = 0.9
#: LARS's trust coefficient eta (You et al. 2017), as BYOL and SoCo use it.
LARS_TRUST = 1e-3
#: A LARS run whose adapted weights can move less than this share of their norm is reported.
STILL = 0.02


def trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) of what the optimizer updates: every parameter that takes a gradient (a momentum
    target's follow the online weights instead)."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def group_names(names: list[str], tensors: dict[str, torch.Tensor]) -> list[list[str]]:
    """`names` by the group their tensors go to, in order: weights of convs and linears (decayed, adapted),
    then 1-d parameters (BN, biases)."""
    return [[n for n in names if tensors[n].ndim > 1], [n for n in names if tensors[n].ndim <= 1]]


def param_groups(params: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two groups (group_names): weights of convs and linears, and 1-d parameters (BN, biases)."""
    named = dict(params)
    plain, flat = ([named[n] for n in names] for names in group_names(list(named), named))
    return [{"params": plain, "weight_decay": weight_decay, "lars": True},
            {"params": flat, "weight_decay": 0.0, "lars": False}]


def renamed_state(state: dict, old: list[list[str]], new: list[list[str]]) -> dict:
    """An optimizer's state dict, saved over the parameters named `old` (per group, in order), for those
    named `new`: a parameter in both keeps its state, one only in `old` leaves with its own, one only in `new`
    starts without."""
    ids = {n: i for group, names in zip(state["param_groups"], old) for i, n in zip(group["params"], names)}
    groups, kept, first = [], {}, 0
    for group, names in zip(state["param_groups"], new):
        groups.append({**group, "params": list(range(first, first + len(names)))})
        kept.update({i: state["state"][ids[n]] for i, n in enumerate(names, first)
                     if ids.get(n) in state["state"]})
        first += len(names)
    return {"state": kept, "param_groups": groups}


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) as BYOL uses it: SGD with momentum whose update of each tensor is
    scaled by eta * ||w|| / ||g + wd w||, for groups with `lars` set. Each group is updated with torch's
    multi-tensor (_foreach) ops: a handful of kernels per group, not a Python loop over the tensors."""

    def __init__(self, params, lr: float, momentum: float = MOMENTUM, weight_decay: float = 0.0,
                 eta: float = LARS_TRUST):
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "lars": True}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            decay = group["weight_decay"]
            g = torch._foreach_add(grads, params, alpha=decay) if decay else torch._foreach_mul(grads, 1.0)
            if group["lars"]:
                w_norm = torch.stack(torch._foreach_norm(params))
                g_norm = torch.stack(torch._foreach_norm(g))
                usable = (w_norm > 0) & (g_norm > 0)
                trust = torch.where(usable, group["eta"] * w_norm / g_norm, torch.ones_like(w_norm))
                torch._foreach_mul_(g, list(trust.unbind(0)))
            bufs = [self._buffer(p) for p in params]
            torch._foreach_mul_(bufs, group["momentum"])
            torch._foreach_add_(bufs, g)
            torch._foreach_add_(params, bufs, alpha=-group["lr"])

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]


def make_optimizer(cfg: TrainConfig, named: list[tuple[str, nn.Parameter]]) -> torch.optim.Optimizer:
    groups = param_groups(named, cfg.weight_decay)
    if cfg.optimizer == "lars":
        return LARS(groups, lr=cfg.scaled_lr)
    for g in groups:
        g.pop("lars")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.scaled_lr)
    return torch.optim.SGD(groups, lr=cfg.scaled_lr, momentum=MOMENTUM)


def lars_reach(cfg: TrainConfig) -> float:
    """The most a LARS run can move an adapted tensor, as a share of its norm: a step moves it by at
    most lr_k x eta of its norm, and momentum repeats each step up to 1 / (1 - momentum) times."""
    rates = sum(lr_at(k, cfg.steps, cfg.scaled_lr, cfg.warmup_steps) for k in range(cfg.steps))
    return rates * LARS_TRUST / (1 - MOMENTUM)


def warn_if_still(cfg: TrainConfig) -> None:
    """Log a warning when `cfg` is a LARS run that cannot move its weights by STILL of their norm."""
    if cfg.optimizer != "lars" or (reach := lars_reach(cfg)) >= STILL:
        return
    linear = cfg.lr_scaling == "linear"
    hint = ', or lr_scaling = "auto" (square root below a batch of 256)' if linear else ""
    log.warning("LARS at lr %.3g (lr %g scaled %s to a batch of %d) can move no weight by more than %.2g "
                "of its norm in %d steps (trust %g, momentum %g): every layer stays near its "
                "initialisation; raise lr or steps%s", cfg.scaled_lr, cfg.lr, cfg.lr_scaling,
                cfg.global_batch, reach, cfg.steps, LARS_TRUST, MOMENTUM, hint)
