"""Optimizers and their parameter groups: BN parameters and biases get no weight decay (and, under
LARS, no trust-ratio adaptation), as in BYOL and SoCo."""

import torch
from torch import nn

from .config import TrainConfig


def param_groups(params: list[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Two groups: weights of convs and linears (decayed, adapted), and 1-d parameters (BN, biases)."""
    plain = [p for _, p in params if p.ndim > 1]
    flat = [p for _, p in params if p.ndim <= 1]
    return [{"params": plain, "weight_decay": weight_decay, "lars": True},
            {"params": flat, "weight_decay": 0.0, "lars": False}]


class LARS(torch.optim.Optimizer):
    """LARS (You et al. 2017) as BYOL uses it: SGD with momentum whose update of each tensor is
    scaled by eta * ||w|| / ||g + wd w||, for groups with `lars` set."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta, "lars": True})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad.clone()
                if group["lars"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, torch.ones_like(w_norm))
                    g.mul_(trust)
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = torch.zeros_like(p)
                buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])


def make_optimizer(cfg: TrainConfig, named: list[tuple[str, nn.Parameter]]) -> torch.optim.Optimizer:
    groups = param_groups(named, cfg.weight_decay)
    if cfg.optimizer == "lars":
        return LARS(groups, lr=cfg.scaled_lr)
    for g in groups:
        g.pop("lars")
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.scaled_lr)
    return torch.optim.SGD(groups, lr=cfg.scaled_lr, momentum=0.9)
