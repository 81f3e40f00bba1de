"""Turn relative draws (fractions in [0, 1]) into integer pixel rectangles.

Recipes hold fractions, not pixels, so a recipe can be sampled from metadata alone and rendered
later against the real image sizes.
"""

import math


def crop_rect(width: int, height: int, area: float, log_ratio: float, u: float,
              v: float) -> tuple[int, int, int, int]:
    """A crop (x, y, w, h) covering `area` of the image with aspect exp(log_ratio), at position (u, v).

    The crop is shrunk to fit inside the image (keeping its aspect where possible), then placed
    with its free space split u : 1-u horizontally and v : 1-v vertically.
    """
    ratio = math.exp(log_ratio)
    target = area * width * height
    w = math.sqrt(target * ratio)
    h = math.sqrt(target / ratio)
    shrink = min(1.0, width / w, height / h)
    w = max(1, min(width, round(w * shrink)))
    h = max(1, min(height, round(h * shrink)))
    return place(width, height, w, h, u, v) + (w, h)


def fit_longest(width: int, height: int, longest: int) -> tuple[int, int]:
    """Size (w, h) of a `width` x `height` object scaled so its longer side is `longest`, aspect kept."""
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _offset(canvas: int, size: int, u: float, truncation: float) -> float:
    free = canvas - size + 2 * truncation * size
    if free < 0:  # too large to stick out by at most `truncation`: it covers the canvas
        return u * (canvas - size)
    return -truncation * size + u * free


def place(canvas_w: int, canvas_h: int, w: int, h: int, u: float, v: float,
          truncation: float = 0.0) -> tuple[int, int]:
    """Top-left (x, y) of a w x h rectangle at fraction (u, v) of the free space.

    With `truncation` t the rectangle may stick out of the canvas by up to t of its width and
    height on any side; with t = 0 it lies fully inside. A side too long for that (longer than the
    canvas side / (1 - 2t)) covers the canvas instead, u (or v) picking which part shows.
    """
    return round(_offset(canvas_w, w, u, truncation)), round(_offset(canvas_h, h, v, truncation))
