"""Blend kernels: paste a cutout's colour and alpha planes onto a canvas, in place (Dwibedi et al. 2017,
Cut, Paste and Learn); each is the kernel of its row in codo_aug.modes.BLENDS.

`hard` uses the alpha as is; `gaussian` feathers it; `motion` smears object and alpha along a
line; `poisson` is cv2.seamlessClone on a reflect-padded canvas so pastes at the border are safe.
Whatever the blend, the object is the cutout's own pixels (alpha > ALPHA_OBJECT): `object_mask`.
"""

import math

import cv2
import numpy as np

from .gaussian import gaussian_blur

#: Alpha above this counts as object when bookkeeping masks and boxes.
ALPHA_OBJECT = 127


def _overlap(canvas_hw: tuple[int, int], h: int, w: int, x: int, y: int):
    """(canvas slices, patch slices) of a h x w patch at (x, y), or None when it misses the canvas."""
    H, W = canvas_hw
    cx0, cy0, cx1, cy1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    return (slice(cy0, cy1), slice(cx0, cx1)), (slice(cy0 - y, cy1 - y), slice(cx0 - x, cx1 - x))


def object_mask(canvas_hw: tuple[int, int], alpha: np.ndarray, x: int, y: int) -> np.ndarray:
    """The cutout's object pixels (`alpha` > ALPHA_OBJECT) placed at (x, y), clipped to the canvas."""
    mask = np.zeros(canvas_hw, dtype=bool)
    ov = _overlap(canvas_hw, alpha.shape[0], alpha.shape[1], x, y)
    if ov is not None:
        mask[ov[0]] = alpha[ov[1]] > ALPHA_OBJECT
    return mask


def alpha_blend(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """canvas = rgb * a + canvas * (1 - a) in place, uint8 rounding, where the patch meets the canvas.

    cv2.blendLinear with weights a and 255 - a: it divides by their sum (255 + 1e-5), which gives the
    integer formula (rgb * a + canvas * (255 - a) + 127) // 255 exactly (checked on all 256^3 inputs)
    at a quarter of numpy's uint16 cost.
    """
    ov = _overlap(canvas.shape[:2], rgb.shape[0], rgb.shape[1], x, y)
    if ov is None:
        return
    (cs, ps) = ov
    weight = alpha[ps].astype(np.float32)
    region = canvas[cs]
    region[:] = cv2.blendLinear(np.ascontiguousarray(rgb[ps]), np.ascontiguousarray(region), weight,
                                255.0 - weight)


def _pad(rgb: np.ndarray, alpha: np.ndarray, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Room for a blur to spread: colour repeats the edge (no dark halo), alpha is 0."""
    return (cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE),
            cv2.copyMakeBorder(alpha, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0))


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel `length` pixels long at `angle` degrees (odd size, centred)."""
    n = max(1, int(round(length)))
    size = n | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = math.cos(math.radians(angle)) * (n - 1) / 2, math.sin(math.radians(angle)) * (n - 1) / 2
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def _smear(rgb: np.ndarray, alpha: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blur colour and alpha together (premultiplied) so the colour does not bleed toward black."""
    a = alpha[:, :, None].astype(np.float32) / 255.0
    premult = cv2.filter2D(rgb.astype(np.float32) * a, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    alpha = cv2.filter2D(a[:, :, 0], -1, kernel, borderType=cv2.BORDER_CONSTANT)
    rgb = premult / np.maximum(alpha, 1e-6)[:, :, None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)


def paste_hard(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int,
               args: tuple[float, ...]) -> None:
    """The alpha as is."""
    alpha_blend(canvas, rgb, alpha, x, y)


def paste_feathered(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int,
                    args: tuple[float, ...]) -> None:
    """The alpha blurred by sigma = args[0] (on a padded patch, so the feather reaches outside)."""
    pad = int(math.ceil(3 * args[0]))
    padded, padded_alpha = _pad(rgb, alpha, pad)
    alpha_blend(canvas, padded, gaussian_blur(padded_alpha, args[0], cv2.BORDER_CONSTANT), x - pad, y - pad)


def paste_motion(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int,
                 args: tuple[float, ...]) -> None:
    """Object and alpha smeared along a line of args = (length, angle in degrees)."""
    kernel = motion_kernel(*args)
    pad = kernel.shape[0] // 2 + 1
    smeared, smeared_alpha = _smear(*_pad(rgb, alpha, pad), kernel)
    alpha_blend(canvas, smeared, smeared_alpha, x - pad, y - pad)


def paste_poisson(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int,
                  args: tuple[float, ...]) -> None:
    """cv2.seamlessClone of the object; it keeps a 2-pixel rim of its mask as background, so the mask is
    grown by that rim."""
    grow = 2
    padded, padded_alpha = _pad(rgb, alpha, grow + 1)
    mask = cv2.dilate((padded_alpha > ALPHA_OBJECT).astype(np.uint8) * 255, np.ones((3, 3), np.uint8),
                      iterations=grow)
    ys, xs = np.nonzero(mask)
    if ys.size < 4:
        return
    x, y = x - grow - 1, y - grow - 1
    h, w = padded.shape[:2]
    pad = max(h, w) + 4
    big = cv2.copyMakeBorder(canvas, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    bx0, by0, bw, bh = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    centre = (int(pad + x + bx0 + bw // 2), int(pad + y + by0 + bh // 2))
    out = cv2.seamlessClone(padded, big, mask, centre, cv2.NORMAL_CLONE)
    canvas[:] = out[pad:pad + canvas.shape[0], pad:pad + canvas.shape[1]]
