"""Probe and decode image files into uint8 RGB / RGBA arrays, refusing what would be wrong.

Every failure is a `BadImage` with a short reason, so sources can skip and count it.
"""

import os
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Decompression-bomb guard: images above this many pixels are refused before decoding.
MAX_PIXELS = 60_000_000

_ORIENTATION = 0x0112
_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


#: BadImage reasons that may depend on the random draw (a small rect of a big image), not the file alone.
DRAW_FAULTS = ("too-small",)


class BadImage(Exception):
    """An image codo will not use; `reason` is a short category for counting."""

    def __init__(self, reason: str, path: str, detail: str = "") -> None:
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.path = path


@dataclass(frozen=True)
class Header:
    """What a file's header says, read without decoding pixels."""

    width: int
    height: int
    has_alpha: bool


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in _ALPHA_MODES or "transparency" in im.info


def _open_checked(path: str) -> Image.Image:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise BadImage("missing", path, exc.strerror or "") from None
    if size == 0:
        raise BadImage("zero-byte", path)
    try:
        im = Image.open(path)
    except _DECODE_ERRORS as exc:
        raise BadImage("unreadable", path, str(exc)) from None
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise BadImage("too-large", path, f"{w}x{h} exceeds {MAX_PIXELS} pixels")
    if w < 1 or h < 1:
        im.close()
        raise BadImage("unreadable", path, f"size {w}x{h}")
    return im


def probe(path: str) -> Header:
    """Header facts of an image file, or BadImage (missing, zero-byte, unreadable, too-large)."""
    with _open_checked(path) as im:
        return Header(im.size[0], im.size[1], _has_alpha(im))


def _to_uint8(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer greyscale scaled to 8 bits (PIL's convert would clip instead)."""
    if im.mode.startswith("I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).round().astype(np.uint8), "L")
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        return Image.fromarray(np.clip(arr * 255.0, 0, 255).round().astype(np.uint8), "L")
    return im


def _reduced_flag(size: tuple[int, int], draft: Callable[[int, int], tuple[int, int]] | None) -> int:
    """cv2's largest JPEG reduction (1/8, 1/4, 1/2) that still covers what `draft` asks for."""
    if draft is not None:
        tw, th = draft(*size)
        for factor, flag in _REDUCED:
            if size[0] // factor >= tw and size[1] // factor >= th:
                return flag
    return cv2.IMREAD_COLOR


def _fast(im: Image.Image, path: str, alpha: bool, exif: bool, draft) -> np.ndarray | None:
    """cv2's decoder for 8-bit RGB/grey JPEGs (faster than Pillow's, with reduced decodes); None for the rest.

    (Pillow stays faster for PNG.)
    """
    if im.format == "JPEG" and im.mode in ("RGB", "L"):
        flag = _reduced_flag(im.size, draft) | (0 if exif else cv2.IMREAD_IGNORE_ORIENTATION)
        bgr = cv2.imdecode(np.fromfile(path, np.uint8), flag)
        if bgr is None:
            raise BadImage("corrupt", path, "JPEG data does not decode (truncated?)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA if alpha else cv2.COLOR_BGR2RGB)
    return None


def decode(path: str, alpha: bool = False, exif: bool = True,
           draft: Callable[[int, int], tuple[int, int]] | None = None) -> np.ndarray:
    """Decode to HxWx3 RGB (or HxWx4 RGBA with `alpha`) uint8, upright per the EXIF orientation.

    `exif=False` keeps the stored pixel order, which annotations (COCO masks) refer to. `draft`
    maps the stored size to the least size needed: JPEGs are then decoded at 1/2, 1/4 or 1/8 scale
    where that still covers it (libjpeg's reduced decode, much faster). JPEGs go through cv2
    (faster); palette, CMYK and 16-bit files are converted by Pillow. Truncated and
    corrupt files raise BadImage rather than yielding partly grey pixels.
    """
    with _open_checked(path) as im:
        try:
            fast = _fast(im, path, alpha, exif, draft)
            if fast is not None:
                return fast
            im.load()
            if exif and im.getexif().get(_ORIENTATION, 1) != 1:
                im = ImageOps.exif_transpose(im)
            im = _to_uint8(im)
            target = "RGBA" if alpha else "RGB"
            if im.mode != target:
                im = im.convert(target)
            return np.array(im)
        except _DECODE_ERRORS as exc:
            raise BadImage("corrupt", path, str(exc)) from None
