"""CoDoDataset (online, map-style), the collate that batches multi-view samples for training, and
`collate_views` for CoDoMultiView's outputs in other SSL code."""

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from .config import SynthConfig
from .recipes.recipe import Recipe
from .pipeline import Synthesizer
from .sample import Sample


class CoDoDataset(Dataset):
    """`ds[i]` is sample i of (sources, config, seed), rendered on the fly; the same in any process.

    `length` only sets what `len()` reports (an epoch): every index >= 0 defines a sample.
    `defer_photometrics`: views without their photometric draws, which come in `Sample.photo` for the
    caller to apply (codo_train does, on its device; codo_aug's collate refuses such samples).
    """

    def __init__(self, instances: str = "sample", backgrounds: str = "sample", seed: int = 0,
                 config: SynthConfig | None = None, length: int = 10_000, defer_photometrics: bool = False):
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.synth = Synthesizer.from_specs(instances, backgrounds, config, seed, defer_photometrics)
        self.length = length

    @property
    def config(self) -> SynthConfig:
        return self.synth.config

    def __len__(self) -> int:
        return self.length

    def _checked(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range 0..{self.length - 1}")
        return index

    def __getitem__(self, index: int) -> Sample:
        return self.synth.sample(self._checked(index))

    def recipe(self, index: int) -> Recipe:
        """The recipe sample `index` is painted from (the first draw that leaves an instance visible in every
        view, substitute files recorded), found from layouts alone: nothing is painted."""
        return self.synth.sample_layout(self._checked(index)).recipe

    def render(self, recipe: Recipe) -> Sample:
        """The sample of `recipe`: ds.render(ds.recipe(i)) equals ds[i]."""
        sample = self.synth.render(recipe)
        if sample is None:
            raise ValueError(f"recipe {recipe.index}/{recipe.attempt} leaves no instance visible in every "
                             "view")
        return sample


@dataclass
class Batch:
    """Per view j: `views[j]` (Bx3xSxS uint8), `rois[j]` (each image's Nx4 RoIs), and for the
    concatenated RoIs `img[j]` (image index) and `ids[j]` (instance id): equal (img, id) pairs across
    views are the positives. `labels[j]`, when the batch was collated with a class list, holds each
    RoI's class as an index into it (the supervised control's targets)."""

    views: list[torch.Tensor]
    rois: list[list[torch.Tensor]]
    img: list[torch.Tensor]
    ids: list[torch.Tensor]
    worker: int = 0  # the DataLoader worker that made it (0 in the main process): for resuming
    keys: list[str] | None = None  # each sample's key (shards) or index (online)
    labels: list[torch.Tensor] | None = None

    def to(self, device: torch.device) -> "Batch":
        return Batch(
            [v.to(device, non_blocking=True) for v in self.views],
            [[r.to(device) for r in rs] for rs in self.rois],
            [t.to(device) for t in self.img],
            [t.to(device) for t in self.ids],
            self.worker,
            self.keys,
            None if self.labels is None else [t.to(device) for t in self.labels],
        )


def _key(sample) -> str:
    """A sample's key (shard records) or index (online samples)."""
    return str(getattr(sample, "key", getattr(sample, "index", "")))


def _slot_classes(sample) -> list[str]:
    """The class of each instance slot (what the views' ids index): a Sample's `labels`, a shard
    record's JSON 'labels'; ValueError naming the sample when it has none."""
    labels = getattr(sample, "labels", None)
    if labels is None:
        labels = getattr(sample, "meta", {}).get("labels")
    if not isinstance(labels, list):
        raise ValueError(f"sample {_key(sample)} lists no instance classes ('labels'); shards written by "
                         "codo-aug synth carry them")
    return labels


def _class_indices(sample, view, index: dict[str, int]) -> list[int]:
    """Each of `view`'s RoIs' class as its position in the class list (`index`: name -> position)."""
    labels = _slot_classes(sample)
    names = [labels[i] if 0 <= i < len(labels) else None for i in view.ids.tolist()]
    unknown = [name for name in names if name not in index]
    if unknown:
        raise ValueError(f"sample {_key(sample)}: instance class {unknown[0]!r} is not among the run's "
                         f"{len(index)} classes")
    return [index[name] for name in names]


def collate(samples: list, classes: Sequence[str] | None = None, deferred: bool = False) -> Batch | None:
    """Batch samples (anything with `.views` of View: CoDoDataset samples, shard records); with
    `classes`, each RoI's class as an index into it (`Batch.labels`).

    Nones (samples passed over) are dropped; None when nothing is left. Samples still carrying
    photometric draws (`.photo`: CoDoDataset(defer_photometrics=True), ShardDataset(pixels=False)) are
    refused unless `deferred` says the caller applies them (codo_train's collate does, on its device).
    """
    samples = [s for s in samples if s is not None]
    if not samples:
        return None
    if not deferred and getattr(samples[0], "photo", None) is not None:
        raise ValueError(f"sample {_key(samples[0])} carries photometric draws still to apply (.photo): "
                         "apply them (codo_aug.render.photometric.apply_photo) or use codo_train's collate")
    n_views = len(samples[0].views)
    index = None if classes is None else {name: k for k, name in enumerate(classes)}
    views, rois, img, ids, labels = [], [], [], [], []
    for j in range(n_views):
        vs = [s.views[j] for s in samples]
        views.append(torch.from_numpy(np.stack([v.image for v in vs])).permute(0, 3, 1, 2).contiguous())
        rois.append([torch.from_numpy(np.ascontiguousarray(v.rois, dtype=np.float32)) for v in vs])
        img.append(torch.cat([torch.full((len(v.ids),), b, dtype=torch.int64) for b, v in enumerate(vs)]))
        ids.append(torch.cat([torch.as_tensor(v.ids, dtype=torch.int64) for v in vs]))
        if index is not None:
            labels.append(torch.tensor([c for s, v in zip(samples, vs) for c in _class_indices(s, v, index)],
                                       dtype=torch.int64))
    info = get_worker_info()
    return Batch(views, rois, img, ids, info.id if info else 0, [_key(s) for s in samples],
                 labels if index is not None else None)


def collate_views(samples: list) -> list | None:
    """Batch CoDoMultiView outputs for a DataLoader: Nones are dropped; per view, the images stacked
    (Bx3xSxS) and every other key a list over the batch (boxes and ids differ in length).

    Dict views give one dict per view, (image, target) views one (images, targets) pair per view;
    None when no sample of the batch had boxes.
    """
    kept = [s for s in samples if s is not None]
    if not kept:
        return None
    batch = []
    for views in zip(*kept):
        if isinstance(views[0], tuple):
            batch.append((torch.stack([image for image, _ in views]), [target for _, target in views]))
        else:
            batch.append({k: torch.stack([v[k] for v in views]) if k == "image" else [v[k] for v in views]
                          for k in views[0]})
    return batch
