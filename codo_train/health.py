"""Training health (DESIGN.md section 4): how far each stage has moved from its initial weights, and
whether the embeddings collapse.

Drift of a stage = |w - w0| / |w0| over its conv and linear weights. BN affine parameters and biases
are left out: they start at 1 and 0, so their |w0| measures the initialisation, not the layer. The
target starts as a copy of the online encoder, so both drift from the same w0. The collapse figure
is SimSiam's (Chen & He 2021, section 4.1): the per-dimension std of the L2-normalised online
projections, about 1/sqrt(dim) while healthy and 0 once collapsed.
"""

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .models.config import ModelConfig
from .objectives import build_model

#: Stage -> name prefixes of its weights inside an encoder (online or target). The stem is conv1 + bn1,
#: whose only weight (BN affine parameters being left out) is conv1's.
ENCODER_STAGES = {
    "stem": ("backbone.body.conv1.",),
    **{f"layer{k}": (f"backbone.body.layer{k}.",) for k in range(1, 5)},
    "fpn": ("backbone.fpn.",),
    "box_head": ("box_head.",),
    "projector": ("projector.",),
    "image_projector": ("image_projector.",),
}
STAGES = (*ENCODER_STAGES, "predictor")  # the predictor belongs to the online branch alone
BRANCHES = ("online", "target")


def _locate(name: str) -> tuple[str, str, str] | None:
    """(branch, stage, name of its initial weight) of a CoDoModel weight, or None outside every stage."""
    if name.startswith("predictor."):
        return "online", "predictor", name
    branch, _, rest = name.partition(".")
    if branch not in BRANCHES:
        return None
    stage = next((s for s, prefixes in ENCODER_STAGES.items() if rest.startswith(prefixes)), None)
    return None if stage is None else (branch, stage, "online." + rest)


def initial_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights drift is measured against: the online encoder's and the predictor's."""
    return {n: p.detach().clone() for n, p in model.named_parameters()
            if p.ndim > 1 and (where := _locate(n)) is not None and where[0] == "online"}


def rebuilt_initial_weights(config: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """The initial weights of a run's model (a checkpoint's model config and the run's seed), rebuilt as the
    trainer builds them: the model right after `torch.manual_seed(seed)`; the global RNG is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return initial_weights(build_model(config))


def drift(weights: Mapping[str, torch.Tensor], initial: Mapping[str, torch.Tensor]
          ) -> dict[str, dict[str, float]]:
    """{branch: {stage: |w - w0| / |w0|}} for the stages `weights` (a CoDoModel's named parameters or
    state dict) holds, in STAGES order; one device-to-host copy."""
    moved: dict[tuple[str, str], torch.Tensor] = {}
    size: dict[tuple[str, str], torch.Tensor] = {}
    for name, w in weights.items():
        where = _locate(name)
        w0 = initial.get(where[2]) if where else None
        if w0 is None or w.ndim < 2 or w0.shape != w.shape:
            continue
        key, w0 = where[:2], w0.to(w.device)
        moved[key] = moved.get(key, 0) + (w.detach().float() - w0.float()).pow(2).sum()
        size[key] = size.get(key, 0) + w0.float().pow(2).sum()
    keys = sorted(moved, key=lambda k: (BRANCHES.index(k[0]), STAGES.index(k[1])))
    if not keys:
        return {}
    ratios = torch.stack([(moved[k] / size[k]).sqrt() for k in keys]).tolist()
    out: dict[str, dict[str, float]] = {}
    for (branch, stage), r in zip(keys, ratios):
        out.setdefault(branch, {})[stage] = r
    return out


def embedding_std(projections: torch.Tensor) -> float:
    """Mean over dimensions of the std over the batch of the L2-normalised `projections` (N x D)."""
    return F.normalize(projections.float(), dim=1).std(dim=0).mean().item()


class HealthMonitor:
    """The health figures of a run, every `every` steps and at the last of `total`.

    Build it on the model as initialised (before a checkpoint is restored): it keeps those weights as
    w0, so a resumed run measures drift from the same start without the checkpoint holding them. A
    forward hook on the online projectors keeps each step's projections for the collapse figure.
    """

    def __init__(self, model: nn.Module, every: int, total: int):
        self.initial = initial_weights(model)
        self.every, self.total = every, total
        self._projections: list[torch.Tensor] = []
        modules = dict(model.named_modules())
        for name in ("online.projector", "online.image_projector"):  # where the model has them
            if modules.get(name) is not None:
                modules[name].register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: tuple, projections: torch.Tensor) -> None:
        self._projections.append(projections.detach())

    def figures(self, step: int, model: nn.Module) -> dict:
        """After step `step` (1-based): {'drift', 'target_drift', 'embedding_std'} when due, else {}.
        Forgets the step's projections either way."""
        projections, self._projections = self._projections, []
        if step % self.every and step != self.total:
            return {}
        branches = drift(dict(model.named_parameters()), self.initial)
        out = {"drift": branches.get("online", {}), "target_drift": branches.get("target", {})}
        if projections:
            out["embedding_std"] = embedding_std(torch.cat(projections))
        return out


def drift_table(figures: dict[str, dict[str, float]]) -> str:
    """`drift`'s figures as aligned text: one row per stage, one column per branch."""
    branches = [b for b in BRANCHES if b in figures]
    stages = [s for s in STAGES if any(s in figures[b] for b in branches)]
    rows = [f"{'stage':<16}" + "".join(f"{b:>10}" for b in branches)]
    for stage in stages:
        cells = (f"{figures[b][stage]:>10.4f}" if stage in figures[b] else f"{'-':>10}" for b in branches)
        rows.append(f"{stage:<16}" + "".join(cells))
    return "\n".join(rows)
