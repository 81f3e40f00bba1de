"""Background-invariance probe: paste N instances each onto two backgrounds and retrieve each
instance's second view from its first by cosine similarity of box-head features (top-1 / top-5),
for a checkpoint and, in the same run, a randomly initialised model of the same architecture."""

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError
from codo_aug.pipeline import Synthesizer

from ..checkpoint import load_checkpoint
from ..data import normalise
from ..distributed import require_device
from ..models.codo import CoDoModel
from ..models.config import ModelConfig
from ..objectives import build_model

#: Two 224-px views (PROBE_VIEW; `view_size` sets another, e.g. a run's own view size), one instance, no
#: flip, jitter or photometrics: only the background (and the instance's scale and place) changes between
#: the views.
PROBE_VIEW = 224
PROBE_CONFIG = SynthConfig(view_sizes=(PROBE_VIEW, PROBE_VIEW), instances_per_sample=(1, 1), flip_p=0.0,
                           jitter=("none",), photometric="none", blend=("hard",), blend_weights=(1.0,),
                           min_visibility=0.0)


def retrieval_accuracy(queries: torch.Tensor, keys: torch.Tensor,
                       ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """Share of rows i whose key i is among the k most cosine-similar keys, for each k."""
    sim = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    rank = (sim > sim.diagonal()[:, None]).sum(dim=1)  # how many keys beat the right one
    return {f"top{k}": float((rank < k).float().mean()) for k in ks}


@dataclass
class ProbeResult:
    instances: int
    checkpoint: dict[str, float]
    random_init: dict[str, float]


def probe_views(instances: str, backgrounds: str, n: int, seed: int = 0,
                view_size: int = PROBE_VIEW) -> tuple[list, list]:
    """Two views of `view_size` px of each of `n` instances (spread over the instance source), each on its
    own background."""
    config = replace(PROBE_CONFIG, view_sizes=(view_size, view_size))
    synth = Synthesizer.from_specs(instances, backgrounds, config, seed)
    count = len(synth.instances)
    if n > count:
        raise InputError(f"--num-instances {n} exceeds the {count} instances of {instances}")
    picks = np.linspace(0, count - 1, n).round().astype(int)
    samples = []
    for i, pick in enumerate(picks):
        recipe = synth.recipe(i)
        recipe = replace(recipe, instances=(replace(recipe.instances[0], source=int(pick)),))
        sample = synth.render(recipe)
        if sample is None:
            raise InputError(f"instance {pick} of {instances} could not be pasted visibly")
        samples.append(sample)
    return [s.views[0] for s in samples], [s.views[1] for s in samples]


@torch.no_grad()
def embed(model: torch.nn.Module, views: list, batch: int = 32) -> torch.Tensor:
    """Box-head features of each view's (single) exact box (`model.online`'s), on the model's device."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(views), batch):
        chunk = views[start:start + batch]
        images = torch.from_numpy(np.stack([v.image for v in chunk])).permute(0, 3, 1, 2).to(device)
        rois = [torch.from_numpy(v.boxes[:1]).to(device) for v in chunk]
        out.append(model.online.box_features(normalise(images), rois, 224.0)["size"].cpu())
    return torch.cat(out)


def load_model(path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str]:
    """The checkpoint's model, rebuilt from its model config, and its architecture; InputError naming what
    does not fit."""
    ckpt = load_checkpoint(path)
    # box-head weights are the same in either levels mode; the probe pools each box at its size's level
    config = replace(ModelConfig.from_dict(ckpt["model_config"]), levels="size")
    arch = config.arch
    model = build_model(config)
    state = ckpt["model"]
    own = model.state_dict()
    shapes = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if shapes:
        raise InputError(f"{path} does not fit a {arch} CoDo model: {len(shapes)} tensor(s) of other shapes "
                         f"({', '.join(shapes[:3])}...)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{path} does not fit a {arch} CoDo model: missing {len(missing)} key(s) "
                         f"({', '.join(missing[:3])}...), unexpected {len(unexpected)} "
                         f"({', '.join(unexpected[:3])}...)")
    return model.to(device).eval(), arch


def run_probe(checkpoint, instances: str, backgrounds: str, n: int = 100, seed: int = 0,
              device: str = "cpu", view_size: int = PROBE_VIEW) -> ProbeResult:
    """Top-1/top-5 retrieval across backgrounds for the checkpoint and for a random model of its
    architecture, on views of `view_size` px."""
    where = require_device(device)
    model, arch = load_model(checkpoint, where)
    first, second = probe_views(instances, backgrounds, n, seed, view_size)
    torch.manual_seed(seed)
    random_model = CoDoModel(arch).to(where).eval()
    return ProbeResult(
        n,
        retrieval_accuracy(embed(model, first), embed(model, second)),
        retrieval_accuracy(embed(random_model, first), embed(random_model, second)),
    )
