"""Cut an instance out of decoded pixels: by alpha, by mask, by box, by a random rect, or by GrabCut.

Each returns an RGBA array cropped to the object (alpha 255 = object, 0 = not).
"""

import cv2
import numpy as np

from ..geometry.boxes import mask_to_box

#: GrabCut runs on a copy whose longer side is at most this, for speed; the mask is scaled back.
GRABCUT_SIDE = 160
GRABCUT_ITERS = 4
#: A GrabCut result covering less than this share of its seed box is not trusted: the box is used.
GRABCUT_MIN_FILL = 0.1


def crop_to_mask(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """RGBA crop of `rgb` to the mask's box, alpha = mask; None for an empty mask."""
    box = mask_to_box(mask)
    if box is None:
        return None
    x1, y1, x2, y2 = box.astype(int)
    return np.dstack([rgb[y1:y2, x1:x2], mask[y1:y2, x1:x2].astype(np.uint8) * 255])


def crop_rgba_to_alpha(rgba: np.ndarray) -> np.ndarray | None:
    """`rgba` cropped to its non-zero alpha; None when fully transparent."""
    box = mask_to_box(cv2.extractChannel(rgba, 3))
    if box is None:
        return None
    x1, y1, x2, y2 = box.astype(int)
    return rgba[y1:y2, x1:x2]


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """The whole pixels (x1, y1, x2, y2) of the XYXY `box` in a `width` x `height` image, at least 1 x 1."""
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(width, int(round(box[2]))), min(height, int(round(box[3])))
    return x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)


def crop_box(rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """RGBA of the XYXY `box` (clipped to the image), fully opaque."""
    x1, y1, x2, y2 = clip_box(box, rgb.shape[1], rgb.shape[0])
    patch = rgb[y1:y2, x1:x2]
    return np.dstack([patch, np.full(patch.shape[:2], 255, np.uint8)])


def grabcut(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Foreground of the XYXY `box` by cv2.grabCut seeded with it (Rother et al. 2004), as RGBA.

    Runs on a copy scaled to GRABCUT_SIDE; falls back to the whole box when the image leaves no
    background around it or the result is a sliver. cv2's RNG is seeded before each call, so the
    result depends on the pixels alone.
    """
    h, w = rgb.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    x1, y1 = int(box[0] * scale), int(box[1] * scale)
    x2, y2 = min(sw, int(np.ceil(box[2] * scale))), min(sh, int(np.ceil(box[3] * scale)))
    if x2 - x1 < 4 or y2 - y1 < 4 or (x2 - x1) * (y2 - y1) > 0.95 * sw * sh:
        return crop_box(rgb, box)
    mask = np.zeros((sh, sw), np.uint8)
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), mask, (x1, y1, x2 - x1, y2 - y1),
                np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64), GRABCUT_ITERS,
                cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if fg.sum() < GRABCUT_MIN_FILL * (x2 - x1) * (y2 - y1):
        return crop_box(rgb, box)
    full = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    inside = np.zeros((h, w), bool)
    inside[int(box[1]):int(np.ceil(box[3])), int(box[0]):int(np.ceil(box[2]))] = True
    cut = crop_to_mask(rgb, full & inside)
    return crop_box(rgb, box) if cut is None else cut
