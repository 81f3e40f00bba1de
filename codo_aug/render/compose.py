"""Compose one view: crop the background, paste cutouts with occlusion bookkeeping, jitter, flip."""

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.boxes import clip_boxes, flip_boxes_horizontal, jitter_boxes_relative, mask_to_box
from ..geometry.placement import crop_rect, fit_longest, place
from ..params.recipe import ViewDraw

#: Alpha above this counts as object when bookkeeping masks and boxes.
ALPHA_OBJECT = 127


@dataclass
class View:
    """A rendered view: RGB pixels, exact boxes, jittered RoIs and the stable ids of its instances."""

    image: np.ndarray  # HxWx3 uint8
    boxes: np.ndarray  # Nx4 float32 XYXY pixels
    rois: np.ndarray  # Nx4 float32 XYXY pixels
    ids: np.ndarray  # N int64


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with area averaging when shrinking and bilinear when growing."""
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def background_view(image: np.ndarray, crop: tuple[float, float, float], size: int) -> np.ndarray:
    """The square crop (area, u, v) of `image`, resized to size x size."""
    h, w = image.shape[:2]
    x, y, cw, ch = crop_rect(w, h, crop[0], 0.0, crop[1], crop[2])
    return resize(np.ascontiguousarray(image[y:y + ch, x:x + cw]), size, size)


def paste(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int) -> np.ndarray:
    """Alpha-blend `rgba` onto `canvas` in place at (x, y); returns the object mask in canvas coordinates."""
    h, w = rgba.shape[:2]
    alpha = rgba[:, :, 3:4].astype(np.uint16)
    region = canvas[y:y + h, x:x + w]
    blended = (rgba[:, :, :3].astype(np.uint16) * alpha + region.astype(np.uint16) * (255 - alpha) + 127) // 255
    region[:] = blended.astype(np.uint8)
    mask = np.zeros(canvas.shape[:2], dtype=bool)
    mask[y:y + h, x:x + w] = rgba[:, :, 3] > ALPHA_OBJECT
    return mask


def render_view(draw: ViewDraw, background: np.ndarray, cutouts: list[np.ndarray], min_visibility: float) -> View:
    """Render `draw`; an instance whose visible mask falls under `min_visibility` of its pasted area is left out."""
    size = draw.size
    canvas = background_view(background, draw.crop, size)
    masks: dict[int, np.ndarray] = {}
    areas: dict[int, int] = {}
    for p in draw.pastes:
        cut = cutouts[p.slot]
        w, h = fit_longest(cut.shape[1], cut.shape[0], max(1, round(p.scale * size)))
        x, y = place(size, size, w, h, p.u, p.v)
        mask = paste(canvas, resize(cut, w, h), x, y)
        for other in masks.values():
            other &= ~mask
        masks[p.slot] = mask
        areas[p.slot] = int(mask.sum())
    ids, boxes = [], []
    for slot in sorted(masks):
        visible = int(masks[slot].sum())
        if visible == 0 or visible < min_visibility * areas[slot]:
            continue
        ids.append(slot)
        boxes.append(mask_to_box(masks[slot]))
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 4)
    deltas = np.array([draw.jitter[s] for s in ids], dtype=np.float32).reshape(-1, 4)
    rois = clip_boxes(jitter_boxes_relative(boxes, deltas), size, size)
    if draw.flip:
        canvas = np.ascontiguousarray(canvas[:, ::-1])
        boxes = flip_boxes_horizontal(boxes, size)
        rois = flip_boxes_horizontal(rois, size)
    return View(canvas, boxes, rois, np.array(ids, dtype=np.int64))
