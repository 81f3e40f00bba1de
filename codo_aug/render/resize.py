"""The one resize of rendering: backgrounds to their view (paint) and cutouts to their paste (layout)."""

import cv2
import numpy as np


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
