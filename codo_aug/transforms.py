"""torchvision-v2 adapters: one detection sample in, a list of CoDo views out.

`CoDoMultiView` has the shape of lightly's MultiViewTransformV2 (one sample in, one structure per
view out) and composes with `torchvision.transforms.v2`: put v2 transforms before it (they see the
source image and its boxes) or after it (they see a list of per-view dicts).
"""

from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert

from .config import SynthConfig
from .errors import InputError
from .params.recipe import Recipe
from .pipeline import Sample, Synthesizer
from .sources.arrays import ArrayInstances
from .sources.base import Source
from .sources.decode import BadImage
from .sources.spec import open_source


def _rgb(image: torch.Tensor) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] not in (1, 3) or image.dtype != torch.uint8:
        raise ValueError(f"image must be a 1- or 3-channel uint8 CxHxW tensor, got {tuple(image.shape)} {image.dtype}")
    return np.ascontiguousarray(image.expand(3, -1, -1).permute(1, 2, 0).numpy())


def _xyxy(boxes: torch.Tensor) -> np.ndarray:
    if isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
        boxes = box_convert(boxes.as_subclass(torch.Tensor), boxes.format.name.lower(), "xyxy")
    return boxes.as_subclass(torch.Tensor).reshape(-1, 4).float().numpy()


class CoDoMultiView(torch.nn.Module):
    """Paste the boxed (or masked) objects of a sample onto backgrounds, in every view of `config`.

    Input: a dict with 'image' (tv_tensors.Image, uint8 CxHxW), 'boxes' (tv_tensors.BoundingBoxes,
    any format), optional 'masks' (tv_tensors.Mask, NxHxW) and 'labels'. Output: one dict per view
    with 'image', 'boxes' (exact), 'rois' (jittered), both XYXY on the view's canvas, 'masks'
    (visible parts), 'ids' (instance ids, stable across views: equal ids are positives), 'source'
    (the input box each instance came from) and, when given, its 'labels'. Draws are keyed by (seed, index): pass `index` for replayable views; without it a
    per-transform call counter is used.
    """

    def __init__(self, backgrounds: str | Source = "sample", config: SynthConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config or SynthConfig()
        self.backgrounds = open_source(backgrounds, "backgrounds") if isinstance(backgrounds, str) else backgrounds
        self.seed = seed
        self._calls = 0

    def _synth(self, sample: dict[str, Any]) -> Synthesizer:
        if "image" not in sample or "boxes" not in sample:
            raise ValueError("CoDoMultiView needs a dict with 'image' and 'boxes'")
        rgb = _rgb(sample["image"])
        masks = sample.get("masks")
        masks = None if masks is None else masks.as_subclass(torch.Tensor).bool().numpy()
        boxes = _xyxy(sample["boxes"])
        try:
            instances = ArrayInstances.from_image(rgb, boxes, masks, [""] * len(boxes), self.config.min_instance_side)
        except BadImage as bad:
            raise InputError(f"CoDoMultiView: {bad}") from None
        return Synthesizer(instances, self.backgrounds, self.config, self.seed)

    def make_params(self, sample: dict[str, Any], index: int) -> Recipe:
        """The recipe of this sample under `index` (replay it with `forward(sample, recipe=...)`)."""
        return self._synth(sample).sample(index).recipe

    def forward(self, sample: dict[str, Any], index: int | None = None, recipe: Recipe | None = None) -> list[dict]:
        synth = self._synth(sample)
        if recipe is not None:
            out = synth.render(recipe)
            if out is None:
                raise ValueError("recipe leaves no instance visible in every view")
        else:
            if index is None:
                index, self._calls = self._calls, self._calls + 1
            out = synth.sample(index)
        return self.to_tv(out, synth.instances.origin, sample.get("labels"))

    @staticmethod
    def to_tv(sample: Sample, origin: list[int], labels: torch.Tensor | None = None) -> list[dict]:
        """Per-view dicts of tv_tensors from a rendered sample; `origin[k]` = input box of instance k."""
        views = []
        for v in sample.views:
            size = tuple(v.image.shape[:2])
            source = torch.tensor([origin[sample.recipe.instances[i].source] for i in v.ids], dtype=torch.int64)
            view = {
                "image": tv_tensors.Image(torch.from_numpy(v.image).permute(2, 0, 1).contiguous()),
                "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(v.boxes), format="XYXY", canvas_size=size),
                "rois": tv_tensors.BoundingBoxes(torch.from_numpy(v.rois), format="XYXY", canvas_size=size),
                "masks": tv_tensors.Mask(torch.from_numpy(v.masks)),
                "ids": torch.from_numpy(v.ids),
                "source": source,
            }
            if labels is not None:
                view["labels"] = torch.as_tensor(labels)[source]
            views.append(view)
        return views
