"""Box kernels on absolute XYXY float boxes (pixel edges: a 1-pixel mask at column 3 spans 3..4)."""

import cv2
import numpy as np


def mask_to_box(mask: np.ndarray) -> np.ndarray | None:
    """Tight XYXY box of the non-zero pixels of a bool or uint8 mask, or None for an empty mask."""
    if mask.size == 0:
        return None
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0:
        return None
    return np.array([x, y, x + w, y + h], dtype=np.float32)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Clip Nx4 boxes to the canvas [0, width] x [0, height]."""
    out = boxes.astype(np.float32, copy=True)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    return out


def flip_boxes_horizontal(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror Nx4 boxes about the vertical centre line of a canvas `width` wide."""
    out = boxes.astype(np.float32, copy=True)
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def jitter_boxes_relative(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """SoCo box jitter: x1, y1, w, h each move by delta * (w or h) of the box.

    `deltas` is Nx4 (dx1, dy1, dw, dh) as fractions of the box size; rows of zeros leave a box alone.
    Width and height never drop below one pixel.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    x1 = boxes[:, 0] + deltas[:, 0] * w
    y1 = boxes[:, 1] + deltas[:, 1] * h
    nw = np.maximum(w * (1.0 + deltas[:, 2]), 1.0)
    nh = np.maximum(h * (1.0 + deltas[:, 3]), 1.0)
    return np.stack([x1, y1, x1 + nw, y1 + nh], axis=1).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of Nx4 and Mx4 boxes, NxM."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def expand_boxes_iou(boxes: np.ndarray, draws: np.ndarray, floor: float) -> np.ndarray:
    """RoIs that contain their box with IoU >= `floor`, grown outward to take in background.

    `draws` is Nx4 in [0, 1): (area, split, left, top). The RoI's area is 1 + area * (1/floor - 1)
    times the box's, split between width (R**split) and height (R**(1-split)); `left` and `top` say
    which share of the extra width and height goes left and up. As the RoI holds the box,
    IoU = box area / RoI area = 1 / R >= floor, and clipping to the view only raises it.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    ratio = 1.0 + draws[:, 0] * (1.0 / floor - 1.0)
    extra_w = w * (ratio ** draws[:, 1] - 1.0)
    extra_h = h * (ratio ** (1.0 - draws[:, 1]) - 1.0)
    x1 = boxes[:, 0] - draws[:, 2] * extra_w
    y1 = boxes[:, 1] - draws[:, 3] * extra_h
    return np.stack([x1, y1, x1 + w + extra_w, y1 + h + extra_h], axis=1).astype(np.float32)
