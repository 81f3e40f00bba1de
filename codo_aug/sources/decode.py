"""Probe and decode image files into uint8 RGB / RGBA arrays, refusing what would be wrong.

Every failure is a `BadImage` with a short reason, so sources can skip and count it.
"""

import io
import os
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # libspng decodes plain PNGs to libpng's pixels ~1.6x faster (measured on the tuxpaint stamps)
    import pyspng
except ImportError:  # not installed (the optional codo[fast]): cv2's libpng decodes them
    pyspng = None

#: Decompression-bomb guard: images above this many pixels are refused before decoding.
MAX_PIXELS = 60_000_000

_ORIENTATION = 0x0112
_REDUCED = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2,
            1: cv2.IMREAD_COLOR}
#: EXIF orientations that turn the image a quarter (its upright width is the stored height).
_TURNED = (5, 6, 7, 8)
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


def _check_size(w: int, h: int, path: str) -> None:
    if w * h > MAX_PIXELS:
        raise BadImage("too-large", path, f"{w}x{h} exceeds {MAX_PIXELS} pixels")
    if w < 1 or h < 1:
        raise BadImage("unreadable", path, f"size {w}x{h}")


def _open_checked(path: str, data: bytes | None = None) -> Image.Image:
    """Pillow's view of the file (or of its `data`, already read), header checked; BadImage if not usable."""
    if data is None:
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise BadImage("missing", path, exc.strerror or "") from None
        if size == 0:
            raise BadImage("zero-byte", path)
    try:
        im = Image.open(path if data is None else io.BytesIO(data))
    except _DECODE_ERRORS as exc:
        raise BadImage("unreadable", path, str(exc)) from None
    try:
        _check_size(*im.size, path)
    except BadImage:
        im.close()
        raise
    return im


def _read(path: str) -> bytes:
    """The whole file in one read; BadImage when missing or empty."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadImage("missing", path, exc.strerror or "") from None
    if not data:
        raise BadImage("zero-byte", path)
    return data


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


def _reduction(size: tuple[int, int], draft: Callable[[int, int], tuple[int, int]] | None) -> int:
    """libjpeg's largest reduction (8, 4, 2, else 1) of an image of `size` that still covers what `draft`
    asks for."""
    if draft is not None:
        tw, th = draft(*size)
        for factor in _REDUCED:
            if size[0] // factor >= tw and size[1] // factor >= th:
                return factor
    return 1


@dataclass(frozen=True)
class Layout:
    """What the first bytes of a JPEG or PNG say: the format, size and whether cv2 decodes it as Pillow
    would (8-bit grey or colour; no palette, transparency chunk, CMYK or EXIF chunk in a PNG)."""

    format: str
    width: int
    height: int
    cv2_ok: bool
    turned: bool = False

    def upright(self, exif: bool) -> tuple[int, int]:
        """(width, height) as decoded: swapped when `exif` applies an orientation that turns the image."""
        return (self.height, self.width) if exif and self.turned else (self.width, self.height)


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: JPEG start-of-frame markers (baseline, progressive, ...; not DHT C4, JPG C8, DAC CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_layout(data: bytes) -> Layout | None:
    """Walk the JPEG markers to the first start-of-frame: size, precision and component count."""
    i, turned = 2, False
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in _SOF:
            if i + 10 > len(data):
                return None
            bits, h, w, comps = data[i + 4], _be16(data, i + 5), _be16(data, i + 7), data[i + 9]
            return Layout("JPEG", w, h, bits == 8 and comps in (1, 3) and h > 0, turned)
        if marker == 0xE1:
            turned = turned or _exif_orientation(data[i + 4:i + 2 + _be16(data, i + 2)]) in _TURNED
        i += 2 + _be16(data, i + 2)
    return None


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag of an APP1 Exif `segment` (1, upright, when it has none)."""
    if segment[:6] != b"Exif\x00\x00" or segment[6:8] not in (b"II", b"MM"):
        return 1
    tiff = segment[6:]
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    for at in range(ifd + 2, ifd + 2 + 12 * int.from_bytes(tiff[ifd:ifd + 2], order), 12):
        if int.from_bytes(tiff[at:at + 2], order) == _ORIENTATION:
            return int.from_bytes(tiff[at + 8:at + 10], order)
    return 1


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each PNG chunk in turn: its type and body start at `start`, its CRC-32 at
    `end`; the walk stops where the bytes end (a last chunk may run past them)."""
    pos = 8
    while pos + 8 <= len(data):
        end = pos + 8 + int.from_bytes(data[pos:pos + 4], "big")
        yield data[pos + 4:pos + 8], pos + 4, end
        pos = end + 4


def _png_layout(data: bytes) -> Layout | None:
    """IHDR's size, bit depth and colour type, and the chunks before the pixel data."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return None
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    chunks = set()
    for kind, _, _ in _png_chunks(data):
        if kind == b"IDAT":
            break
        chunks.add(kind)
    plain = depth == 8 and colour in (0, 2, 6) and not chunks & {b"tRNS", b"eXIf"}
    return Layout("PNG", w, h, plain)


def _be16(data: bytes, i: int) -> int:
    return (data[i] << 8) | data[i + 1]


def layout(data: bytes) -> Layout | None:
    """The Layout of JPEG or PNG bytes; None for other formats (Pillow's to judge)."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_layout(data)
    if data[:8] == _PNG_MAGIC:
        return _png_layout(data)
    return None


#: cv2 colour conversion to RGB / RGBA by the channel count it decoded.
_TO_RGB = {1: cv2.COLOR_GRAY2RGB, 3: cv2.COLOR_BGR2RGB, 4: cv2.COLOR_BGRA2RGB}
_TO_RGBA = {1: cv2.COLOR_GRAY2RGBA, 3: cv2.COLOR_BGR2RGBA, 4: cv2.COLOR_BGRA2RGBA}


class Decoded(NamedTuple):
    """Decoded pixels, the libjpeg reduction `factor` they were decoded at (1: full size) and the image's
    full upright `width` x `height`."""

    pixels: np.ndarray
    factor: int
    width: int
    height: int


def _png_chunks_intact(data: bytes) -> bool:
    """Whether every critical chunk (IHDR, PLTE, IDAT) is whole with a matching CRC-32 and an IEND
    follows: libspng, unlike libpng, decodes IDAT data whose checksums fail, so that damage is caught
    here. Ancillary chunks and IEND's own CRC are not checked, as libpng and Pillow do not refuse them."""
    for kind, start, end in _png_chunks(data):
        if kind == b"IEND":
            return True
        if end + 4 > len(data):
            return False
        critical = not kind[0] & 0x20  # an upper-case first letter
        if critical and zlib.crc32(data[start:end]) != int.from_bytes(data[end:end + 4], "big"):
            return False
    return False


def _spng_decode(data: bytes, path: str, alpha: bool) -> np.ndarray:
    """A plain 8-bit PNG through libspng, straight to RGB or RGBA; BadImage when damaged."""
    if not _png_chunks_intact(data):
        raise BadImage("corrupt", path, "PNG chunk checksum fails or its end is missing (truncated?)")
    try:
        return pyspng.load(data, "RGBA" if alpha else "RGB")
    except RuntimeError as exc:
        raise BadImage("corrupt", path, str(exc)) from None


def _cv2_decode(data: bytes, form: Layout, path: str, alpha: bool, exif: bool, draft) -> Decoded:
    """cv2's decoder (faster than Pillow's for JPEG and PNG; JPEGs at a reduced scale when `draft` allows),
    or libspng for PNG where installed."""
    size, factor = form.upright(exif), 1
    if form.format == "PNG" and pyspng is not None:
        return Decoded(_spng_decode(data, path, alpha), factor, *size)
    if form.format == "JPEG":
        factor = _reduction(size, draft)
        flag = _REDUCED[factor] | (0 if exif else cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        flag = cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if img is None:
        raise BadImage("corrupt", path, f"{form.format} data does not decode (truncated?)")
    channels = 1 if img.ndim == 2 else img.shape[2]
    return Decoded(cv2.cvtColor(img, (_TO_RGBA if alpha else _TO_RGB)[channels]), factor, *size)


def decode(path: str, alpha: bool = False, exif: bool = True,
           draft: Callable[[int, int], tuple[int, int]] | None = None) -> np.ndarray:
    """Decode to HxWx3 RGB (or HxWx4 RGBA with `alpha`) uint8, upright per the EXIF orientation.

    `exif=False` keeps the stored pixel order, which annotations (COCO masks) refer to. `draft`
    maps the (upright) size to the least size needed: JPEGs are then decoded at 1/2, 1/4 or 1/8 scale
    where that still covers it (libjpeg's reduced decode, much faster). The file is read once; 8-bit
    JPEGs go through cv2 and plain 8-bit PNGs through libspng (cv2 without it), faster than Pillow and
    the same pixels for PNG, sized from their own headers; palette, CMYK, 16-bit and EXIF-tagged PNGs
    are converted by Pillow. Truncated and corrupt files raise BadImage rather than yielding partly grey
    pixels.
    """
    return decode_scaled(path, alpha, exif, draft).pixels


def decode_scaled(path: str, alpha: bool = False, exif: bool = True,
                  draft: Callable[[int, int], tuple[int, int]] | None = None) -> Decoded:
    """As `decode`, also saying the reduction applied and the full size, for cuts placed in full-size
    coordinates."""
    data = _read(path)
    form = layout(data)
    if form is not None and form.cv2_ok:
        _check_size(form.width, form.height, path)
        return _cv2_decode(data, form, path, alpha, exif, draft)
    with _open_checked(path, data) as im:
        try:
            im.load()
            if exif and im.getexif().get(_ORIENTATION, 1) != 1:
                im = ImageOps.exif_transpose(im)
            im = _to_uint8(im)
            target = "RGBA" if alpha else "RGB"
            if im.mode != target:
                im = im.convert(target)
            return Decoded(np.array(im), 1, *im.size)
        except _DECODE_ERRORS as exc:
            raise BadImage("corrupt", path, str(exc)) from None
