"""Apply a view's PhotoDraw to uint8 RGB pixels: colour jitter, greyscale, blur, solarize.

Follows torchvision's ColorJitter on uint8 images (each factor blends with a degenerate image and
saturates after each step; hue rotates the HSV hue), with cv2 kernels for speed (the blur as one float
separable filter: render.gaussian).
"""

import cv2
import numpy as np

from ..recipes.recipe import PhotoDraw
from .gaussian import gaussian_blur

_SOLARIZE = np.array([v if v < 128 else 255 - v for v in range(256)], np.uint8)


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _hue(img: np.ndarray, shift: float) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)
    hsv[:, :, 0] += np.uint8(int(round(shift * 256)) % 256)  # uint8 arithmetic wraps around the circle
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def _step(img: np.ndarray, op: int, d: PhotoDraw) -> np.ndarray:
    if op == 0 and d.brightness != 1.0:
        return cv2.addWeighted(img, d.brightness, img, 0.0, 0.0)
    if op == 1 and d.contrast != 1.0:
        return cv2.addWeighted(img, d.contrast, img, 0.0, (1.0 - d.contrast) * cv2.mean(_grey(img))[0])
    if op == 2 and d.saturation != 1.0:
        grey = cv2.cvtColor(_grey(img), cv2.COLOR_GRAY2RGB)
        return cv2.addWeighted(img, d.saturation, grey, 1.0 - d.saturation, 0.0)
    if op == 3 and d.hue != 0.0:
        return _hue(img, d.hue)
    return img


def apply_photo(image: np.ndarray, d: PhotoDraw) -> np.ndarray:
    """`image` (HxWx3 uint8) with the draws of `d`; the same array when `d` is the identity."""
    if d == PhotoDraw(order=d.order):
        return image
    out = image
    for op in d.order:
        out = _step(out, op, d)
    if d.grayscale:
        out = cv2.cvtColor(_grey(out), cv2.COLOR_GRAY2RGB)
    if d.blur_sigma > 0:
        out = gaussian_blur(out, d.blur_sigma)
    if d.solarize:
        out = cv2.LUT(out, _SOLARIZE)
    return out
