"""Lay out one view: where each cutout goes, what of it stays visible, exact boxes and RoIs; no pixel of
the view is painted (render.paint does that), so a draw rejected for visibility costs no compositing."""

from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry.boxes import clip_boxes, flip_boxes_horizontal, mask_to_box
from ..geometry.placement import crop_rect, fit_longest, place
from ..modes import JITTERS
from ..recipes.recipe import ViewDraw
from .blend import ALPHA_OBJECT, object_mask
from .resize import resize


@dataclass(frozen=True)
class ViewRules:
    """The fixed settings rendering needs (from SynthConfig). `photometric` names the mode whose kernel
    applies each view's photometric draws; None leaves them to the caller (who applies them elsewhere,
    e.g. on the training device)."""

    min_visibility: float = 0.3
    max_truncation: float = 0.0
    iou_floor: float = 0.5
    photometric: str | None = "soco"


@dataclass(frozen=True)
class Placed:
    """One paste as laid out: the cutout resized to its paste (RGBA `patch`, its `alpha` plane packed)
    with its top-left (x, y) on the view, and its blend."""

    patch: np.ndarray
    alpha: np.ndarray
    x: int
    y: int
    blend: str
    blend_args: tuple[float, ...]


@dataclass(frozen=True)
class ViewLayout:
    """A view but its pixels: the pastes in paste order, and per instance shown (`min_visibility`) its id
    (slot), visible mask (NxSxS bool), exact box and RoI (Nx4 XYXY), flipped as the view is."""

    placed: tuple[Placed, ...]
    ids: np.ndarray
    boxes: np.ndarray
    rois: np.ndarray
    masks: np.ndarray


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


def layout_view(draw: ViewDraw, cutouts: list[np.ndarray], rules: ViewRules) -> ViewLayout:
    """Lay out `draw` over the slots' `cutouts`. An instance whose visible pixels fall under `min_visibility`
    of its whole pasted object (occluded by later pastes or cut by the view's edge) is left out."""
    size = draw.size
    placed, masks, areas = [], {}, {}
    for p in draw.pastes:
        cut = view_cutout(cutouts[p.slot], p.crop)
        w, h = fit_longest(cut.shape[1], cut.shape[0], max(1, round(p.scale * size)))
        x, y = place(size, size, w, h, p.u, p.v, rules.max_truncation)
        patch = resize(cut, w, h)
        alpha = cv2.extractChannel(patch, 3)
        placed.append(Placed(patch, alpha, x, y, p.blend, p.blend_args))
        mask = object_mask((size, size), alpha, x, y)
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
        kept = kept[:, :, ::-1].copy()
        boxes = flip_boxes_horizontal(boxes, size)
        rois = flip_boxes_horizontal(rois, size)
    return ViewLayout(tuple(placed), np.array(ids, dtype=np.int64), boxes, rois, kept)
