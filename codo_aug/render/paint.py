"""Paint one laid-out view: the background's crop, each paste blended in order, flip, photometrics."""

import cv2
import numpy as np

from ..geometry.placement import crop_rect
from ..modes import BLENDS, PHOTOMETRICS
from ..recipes.recipe import ViewDraw
from ..sample import View
from .layout import ViewLayout, ViewRules, layout_view
from .resize import resize


def background_view(image: np.ndarray, crop: tuple[float, float, float], size: int) -> np.ndarray:
    """The square crop (area, u, v) of `image`, resized to size x size."""
    h, w = image.shape[:2]
    x, y, cw, ch = crop_rect(w, h, crop[0], 0.0, crop[1], crop[2])
    return resize(image[y:y + ch, x:x + cw], size, size)


def paint_view(draw: ViewDraw, layout: ViewLayout, background: np.ndarray, rules: ViewRules) -> View:
    """The view of `draw` laid out as `layout`, on the `background` image's pixels."""
    canvas = background_view(background, draw.crop, draw.size)
    for p in layout.placed:
        BLENDS[p.blend].kernel(canvas, cv2.cvtColor(p.patch, cv2.COLOR_RGBA2RGB), p.alpha, p.x, p.y,
                               p.blend_args)
    if draw.flip:
        canvas = cv2.flip(canvas, 1)
    if rules.photometric is not None:
        canvas = PHOTOMETRICS[rules.photometric].kernel(canvas, draw.photo)
    return View(canvas, layout.boxes, layout.rois, layout.ids, layout.masks)


def render_view(draw: ViewDraw, background: np.ndarray, cutouts: list[np.ndarray], rules: ViewRules) -> View:
    """Lay out and paint `draw` in one go: one view from pixels at hand (the Synthesizer lays out a whole
    sample before painting it)."""
    return paint_view(draw, layout_view(draw, cutouts, rules), background, rules)
