"""The modes of blending, RoI jitter and photometrics: each one `{name: Mode(draw, kernel)}` row.

`draw` samples a mode's parameters into the recipe (codo_aug.recipes: no pixels), `kernel` applies them
(codo_aug.render, codo_aug.geometry), as torchvision v2 pairs `make_params` with a kernel table. A new
mode is one row here plus its draw and kernel; SynthConfig accepts the names of these tables.
"""

from typing import Callable, NamedTuple

import numpy as np

from .geometry.boxes import expand_boxes_iou, jitter_boxes_relative
from .recipes import draws
from .recipes.photometric import MOCOV2, SOCO_FIRST, SOCO_OTHER, PerView
from .render.blend import paste_feathered, paste_hard, paste_motion, paste_poisson
from .render.photometric import apply_photo


class Mode(NamedTuple):
    """One mode: `draw` samples its parameters, `kernel` applies them (signatures per table below)."""

    draw: Callable
    kernel: Callable


def _keep(boxes: np.ndarray, jitter: np.ndarray, iou_floor: float) -> np.ndarray:
    return boxes.copy()


def _relative(boxes: np.ndarray, jitter: np.ndarray, iou_floor: float) -> np.ndarray:
    return jitter_boxes_relative(boxes, jitter)


#: draw(rng, config) -> blend_args; kernel(canvas, rgb, alpha, x, y, blend_args) pastes in place.
BLENDS: dict[str, Mode] = {
    "hard": Mode(draws.no_args, paste_hard),
    "gaussian": Mode(draws.feather, paste_feathered),
    "poisson": Mode(draws.no_args, paste_poisson),
    "motion": Mode(draws.motion, paste_motion),
}

#: draw(rng, config) -> one RoI's four draws; kernel(boxes, draws, iou_floor) -> RoIs (Nx4, unclipped).
JITTERS: dict[str, Mode] = {
    "relative": Mode(draws.relative, _relative),
    "iou": Mode(draws.iou, expand_boxes_iou),
    "none": Mode(draws.keep_box, _keep),
}

#: draw(rng, view, size) -> PhotoDraw; kernel(image, photo) -> image. A mode is its policies per view: the
#: kernel applies any PhotoDraw (codo_train.device_decode mirrors it on the GPU).
PHOTOMETRICS: dict[str, Mode] = {
    "soco": Mode(PerView((SOCO_FIRST, SOCO_OTHER)), apply_photo),
    "mocov2": Mode(PerView((MOCOV2,)), apply_photo),
    "none": Mode(PerView(), apply_photo),
}
