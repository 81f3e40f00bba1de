"""The core nouns: a View (pixels, boxes, RoIs, ids, masks) and a Sample (a recipe's views and where
their instances came from), shared by the renderer, the shard format, the dataset and the transforms."""

from dataclasses import dataclass

import numpy as np

from .recipes.recipe import PhotoDraw, Recipe


@dataclass
class View:
    """A rendered view: RGB pixels, exact boxes, jittered RoIs, stable instance ids, visible masks.

    `masks` (NxHxW bool) is None for views read back from shards.
    """

    image: np.ndarray  # HxWx3 uint8
    boxes: np.ndarray  # Nx4 float32 XYXY pixels
    rois: np.ndarray  # Nx4 float32 XYXY pixels
    ids: np.ndarray  # N int64
    masks: np.ndarray | None = None



@dataclass
class Sample:
    """One synthesised sample: its recipe, the views, and each instance slot's class and file.

    `photo` holds each view's photometric draws when the views were rendered without them
    (Synthesizer(defer_photometrics=True): the trainer applies them on its device); None when the views
    already include them.
    """

    index: int
    recipe: Recipe
    views: list[View]
    labels: list[str]
    instance_files: list[str]
    background_files: list[str]
    photo: list[PhotoDraw] | None = None
