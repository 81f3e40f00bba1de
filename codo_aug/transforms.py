"""torchvision-v2 adapters: one detection sample in, a list of CoDo views out.

`CoDoMultiView` has the shape of lightly's MultiViewTransformV2 (one sample in, one structure per
view out) and composes with `torchvision.transforms.v2`: put v2 transforms before it (they see the
source image and its boxes) or after it (they see the list of views).
"""

from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.ops import box_convert
from torchvision.transforms.v2 import functional as F

from .config import SynthConfig
from .recipes.recipe import Recipe
from .pipeline import Synthesizer
from .sample import Sample
from .sources.arrays import ArrayInstances
from .sources.base import Source
from .sources.decode import BadImage
from .sources.spec import open_source
from .substitutes import Tried

#: Indices drawn from torch's generator (calls without `index`) lie in [0, INDEX_RANGE).
INDEX_RANGE = 2**62


def _rgb(image: Any) -> np.ndarray:
    """HxWx3 uint8 of a PIL image or a 1- or 3-channel CxHxW tensor (float images are in [0, 1])."""
    if isinstance(image, PIL.Image.Image):
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError("image must be a PIL image or a 1- or 3-channel CxHxW tensor, got "
                         f"{type(image).__name__} {tuple(getattr(image, 'shape', ()))}")
    image = F.to_dtype(image.as_subclass(torch.Tensor), torch.uint8, scale=True)
    return np.ascontiguousarray(image.expand(3, -1, -1).permute(1, 2, 0).numpy())


def _dtype(image: Any) -> torch.dtype:
    """The dtype the views come out in: the input tensor's (its value range with it), uint8 for PIL."""
    return image.dtype if isinstance(image, torch.Tensor) else torch.uint8


def _xyxy(boxes: torch.Tensor) -> np.ndarray:
    """Nx4 float32 XYXY of BoundingBoxes in any format, or of a plain tensor taken as XYXY."""
    boxes = torch.as_tensor(boxes)
    if isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format != tv_tensors.BoundingBoxFormat.XYXY:
        boxes = box_convert(boxes.as_subclass(torch.Tensor), boxes.format.name.lower(), "xyxy")
    return boxes.as_subclass(torch.Tensor).reshape(-1, 4).float().numpy()


def _detection(inputs: tuple) -> tuple[dict | None, bool]:
    """The sample as one dict (image, boxes, optional masks and labels), and whether it came as a pair.

    A pair's target without 'boxes' (torchvision's COCO wrapper for an image without annotations)
    gives None; a dict must hold 'image' and 'boxes'.
    """
    sample = inputs if len(inputs) > 1 else inputs[0]
    if isinstance(sample, (tuple, list)) and len(sample) == 2 and isinstance(sample[1], dict):
        image, target = sample
        return ({**target, "image": image} if "boxes" in target else None), True
    if not isinstance(sample, dict) or "image" not in sample or "boxes" not in sample:
        raise ValueError("CoDoMultiView needs a dict with 'image' and 'boxes', or an (image, target) pair")
    return sample, False


def _names(labels: Any, n: int) -> list[str]:
    """The n input boxes' classes as strings ('' without labels): what `balance_classes` draws among."""
    if labels is None:
        return [""] * n
    return [str(x) for x in (labels.tolist() if isinstance(labels, torch.Tensor) else labels)]


def _pick(labels: Any, source: torch.Tensor) -> Any:
    """The labels of input boxes `source`: a tensor for tensor labels, else a list."""
    if isinstance(labels, torch.Tensor):
        return labels.as_subclass(torch.Tensor)[source]
    return [labels[k] for k in source.tolist()]


class CoDoMultiView(torch.nn.Module):
    """Paste the boxed (or masked) objects of a sample onto backgrounds, in every view of `config`.

    Input: a dict with 'image' (tv_tensors.Image or plain CxHxW tensor, uint8 or float in [0, 1], or
    a PIL image), 'boxes' (tv_tensors.BoundingBoxes in any format, or a plain Nx4 XYXY tensor),
    optional 'masks' (NxHxW) and 'labels'; or the (image, target) pair of
    `torchvision.datasets.wrap_dataset_for_transforms_v2`, target holding those keys.

    Output: for a dict, one dict per view with 'image' (tv_tensors.Image in the input's dtype and
    value range, as torchvision's transforms keep it: uint8 for uint8 or PIL, float in [0, 1] for
    float), 'boxes' (exact) and 'rois' (jittered), both XYXY BoundingBoxes on the view's canvas,
    'masks' (visible parts), 'ids' (stable across views: equal ids are positives), 'source' (the
    input box each instance came from), 'labels' when given, and 'index' (the draw: pass it back as
    `index` to replay). For a pair, one (image, target) pair per view, target holding the rest.
    Other input keys are dropped.

    A sample with no box of at least `min_instance_side` px (or a wrapped COCO image without
    annotations) gives None: `codo_aug.dataset.collate_views` drops it from a batch. `view_transform`
    (e.g. v2.ToDtype) is applied to each view's dict or pair: a v2.Compose called with two arguments,
    as a wrapped dataset calls its `transforms`, cannot pass None on, so put CoDoMultiView last there.

    Draws: `index` (or a `recipe`) replays exactly; without them each call draws its index from
    torch's generator, as torchvision's random transforms do, so DataLoader workers and epochs differ
    and `torch.manual_seed` repeats a run.
    """

    def __init__(self, backgrounds: str | Source = "sample", config: SynthConfig | None = None, seed: int = 0,
                 view_transform: Callable | None = None):
        super().__init__()
        self.config = config or SynthConfig()
        self.view_transform = view_transform
        if isinstance(backgrounds, str):
            backgrounds = open_source(backgrounds, "backgrounds", self.config.min_background_side)
        self.backgrounds = backgrounds
        self.seed = seed
        #: What the calls learnt of the background files (each call lays out over its own instances).
        self.backgrounds_tried = Tried()

    def _synth(self, sample: dict[str, Any]) -> Synthesizer | None:
        """A Synthesizer over the sample's boxes as instances; None when none is large enough."""
        masks = sample.get("masks")
        masks = None if masks is None else torch.as_tensor(masks).as_subclass(torch.Tensor).bool().numpy()
        boxes = _xyxy(sample["boxes"])
        names = _names(sample.get("labels"), len(boxes))
        try:
            instances = ArrayInstances.from_image(_rgb(sample["image"]), boxes, masks, names,
                                                  self.config.min_instance_side)
        except BadImage:  # no box of at least min_instance_side px
            return None
        return Synthesizer(instances, self.backgrounds, self.config, self.seed,
                           backgrounds_tried=self.backgrounds_tried)

    def make_params(self, sample: Any, index: int) -> Recipe | None:
        """The recipe of `sample` (a dict or pair) under `index`, None when it has no usable box;
        `forward(sample, recipe=...)` replays it. Found from layouts alone: no view is painted."""
        detection, _ = _detection((sample,))
        synth = None if detection is None else self._synth(detection)
        return None if synth is None else synth.sample_layout(index).recipe

    def forward(self, *inputs: Any, index: int | None = None, recipe: Recipe | None = None) -> list | None:
        detection, pair = _detection(inputs)
        synth = None if detection is None else self._synth(detection)
        if synth is None:
            return None
        if recipe is not None:
            out = synth.render(recipe)
            if out is None:
                raise ValueError("recipe leaves no instance visible in every view")
        else:
            if index is None:
                index = int(torch.randint(INDEX_RANGE, ()))
            out = synth.sample(index)
        views = self.to_tv(out, synth.instances.origin, detection.get("labels"), _dtype(detection["image"]))
        views = [(view.pop("image"), view) for view in views] if pair else views
        return views if self.view_transform is None else [self.view_transform(view) for view in views]

    @staticmethod
    def to_tv(sample: Sample, origin: list[int], labels: Any = None,
              dtype: torch.dtype = torch.uint8) -> list[dict]:
        """Per-view dicts of tv_tensors from a rendered sample, images in `dtype` (converted and scaled from
        uint8 as v2.ToDtype(dtype, scale=True) does); `origin[k]` = input box of instance k."""
        views = []
        for v in sample.views:
            size = tuple(v.image.shape[:2])
            source = torch.tensor([origin[sample.recipe.instances[i].used] for i in v.ids],
                                  dtype=torch.int64)
            image = F.to_dtype(torch.from_numpy(v.image).permute(2, 0, 1).contiguous(), dtype, scale=True)
            view = {
                "image": tv_tensors.Image(image),
                "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(v.boxes), format="XYXY", canvas_size=size),
                "rois": tv_tensors.BoundingBoxes(torch.from_numpy(v.rois), format="XYXY", canvas_size=size),
                "masks": tv_tensors.Mask(torch.from_numpy(v.masks)),
                "ids": torch.from_numpy(v.ids),
                "source": source,
                "index": sample.index,
            }
            if labels is not None:
                view["labels"] = _pick(labels, source)
            views.append(view)
        return views

