"""Compose one view: crop the background, paste cutouts with occlusion bookkeeping, RoI jitter,
flip, photometrics."""

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.boxes import clip_boxes, flip_boxes_horizontal, mask_to_box
from ..geometry.placement import crop_rect, fit_longest, place
from ..modes import BLENDS, JITTERS, PHOTOMETRICS
from ..params.recipe import ViewDraw
from ..sample import View
from .blend import ALPHA_OBJECT, object_mask


@dataclass(frozen=True)
class ViewRules:
    """The fixed settings rendering needs (from SynthConfig). `photometric` names the mode whose kernel
    applies each view's photometric draws; None leaves them to the caller (who applies them elsewhere,
    e.g. on the training device)."""

    min_visibility: float = 0.3
    max_truncation: float = 0.0
    iou_floor: float = 0.5
    photometric: str | None = "soco"


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A new resized array, without aliasing and fast: shrink by the whole factor k >= 2 with cv2's
    integer area averaging (the last < k rows and columns are dropped), then bilinear to the exact size."""
    h, w = image.shape[:2]
    k = min(w // width, h // height)
    if k >= 2:
        image = cv2.resize(image[:h - h % k, :w - w % k], (w // k, h // k), interpolation=cv2.INTER_AREA)
    if image.shape[:2] == (height, width):
        return image.copy()  # callers paint on the result
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def background_view(image: np.ndarray, crop: tuple[float, float, float], size: int) -> np.ndarray:
    """The square crop (area, u, v) of `image`, resized to size x size."""
    h, w = image.shape[:2]
    x, y, cw, ch = crop_rect(w, h, crop[0], 0.0, crop[1], crop[2])
    return resize(image[y:y + ch, x:x + cw], size, size)


def view_cutout(cut: np.ndarray, crop: tuple[float, ...]) -> np.ndarray:
    """The part of the RGBA `cut` a view shows: its crop (area, log_ratio, u, v), alpha included,
    or the whole cutout for ()."""
    if not crop:
        return cut
    x, y, cw, ch = crop_rect(cut.shape[1], cut.shape[0], *crop)
    return cut[y:y + ch, x:x + cw]


def jitter_rois(boxes: np.ndarray, draws: np.ndarray, mode: str, iou_floor: float, size: int) -> np.ndarray:
    """RoIs for exact `boxes` under jitter `mode`, clipped to the view; rows of zero draws keep the box."""
    return clip_boxes(JITTERS[mode].kernel(boxes, draws, iou_floor), size, size)


def render_view(draw: ViewDraw, background: np.ndarray, cutouts: list[np.ndarray], rules: ViewRules) -> View:
    """Render `draw`. An instance whose visible pixels fall under `min_visibility` of its whole
    pasted object (occluded by later pastes or cut by the view's edge) is left out."""
    size = draw.size
    canvas = background_view(background, draw.crop, size)
    masks: dict[int, np.ndarray] = {}
    areas: dict[int, int] = {}
    for p in draw.pastes:
        cut = view_cutout(cutouts[p.slot], p.crop)
        w, h = fit_longest(cut.shape[1], cut.shape[0], max(1, round(p.scale * size)))
        x, y = place(size, size, w, h, p.u, p.v, rules.max_truncation)
        patch = resize(cut, w, h)
        alpha = cv2.extractChannel(patch, 3)
        mask = object_mask(canvas.shape[:2], alpha, x, y)
        BLENDS[p.blend].kernel(canvas, cv2.cvtColor(patch, cv2.COLOR_RGBA2RGB), alpha, x, y, p.blend_args)
        for other in masks.values():
            other &= ~mask
        masks[p.slot] = mask
        areas[p.slot] = np.count_nonzero(alpha > ALPHA_OBJECT)
    shown = {s: np.count_nonzero(m) for s, m in masks.items()}
    ids = [s for s in sorted(masks) if shown[s] and shown[s] >= rules.min_visibility * areas[s]]
    kept = np.stack([masks[s] for s in ids]) if ids else np.zeros((0, size, size), bool)
    boxes = np.array([mask_to_box(m) for m in kept], dtype=np.float32).reshape(-1, 4)
    draws = np.array([draw.jitter[s] for s in ids], dtype=np.float32).reshape(-1, 4)
    rois = jitter_rois(boxes, draws, draw.jitter_mode, rules.iou_floor, size)
    if draw.flip:
        canvas = cv2.flip(canvas, 1)
        kept = kept[:, :, ::-1].copy()
        boxes = flip_boxes_horizontal(boxes, size)
        rois = flip_boxes_horizontal(rois, size)
    if rules.photometric is not None:
        canvas = PHOTOMETRICS[rules.photometric].kernel(canvas, draw.photo)
    return View(canvas, boxes, rois, np.array(ids, dtype=np.int64), kept)
