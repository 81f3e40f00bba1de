"""Apply a view's PhotoDraw to uint8 RGB pixels: colour jitter, greyscale, blur, solarize.

Follows torchvision's ColorJitter semantics (each factor blends with a degenerate image, clamped
after each step; hue rotates the HSV hue) on numpy/cv2 for speed.
"""

import cv2
import numpy as np

from ..params.recipe import PhotoDraw

_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def _blend(img: np.ndarray, other: np.ndarray | float, factor: float) -> np.ndarray:
    return np.clip(other + factor * (img - other), 0.0, 255.0)


def _hue(img: np.ndarray, shift: float) -> np.ndarray:
    hsv = cv2.cvtColor(np.round(img).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
    hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int16) + int(round(shift * 256))) % 256
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)


def apply_photo(image: np.ndarray, d: PhotoDraw) -> np.ndarray:
    """`image` (HxWx3 uint8) with the draws of `d`; the same array when `d` is the identity."""
    if d == PhotoDraw(order=d.order):
        return image
    img = image.astype(np.float32)
    for op in d.order:
        if op == 0 and d.brightness != 1.0:
            img = _blend(img, 0.0, d.brightness)
        elif op == 1 and d.contrast != 1.0:
            img = _blend(img, float((img @ _GREY).mean()), d.contrast)
        elif op == 2 and d.saturation != 1.0:
            img = _blend(img, (img @ _GREY)[:, :, None], d.saturation)
        elif op == 3 and d.hue != 0.0:
            img = _hue(img, d.hue)
    out = np.round(img).astype(np.uint8)
    if d.grayscale:
        out = np.repeat(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
    if d.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), d.blur_sigma)
    if d.solarize:
        out = np.where(out >= 128, 255 - out, out).astype(np.uint8)
    return out
