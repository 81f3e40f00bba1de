"""Cheap checks of one COCO annotation, made when a source opens, so a malformed one is a counted
skip with a reason that names the fault, not a crash (or a hang) inside pycocotools later.

Each check returns '' when the value is fine, else the skip reason.
"""

import math

#: Polygon coordinates further than this many image sides outside the image are refused: pycocotools
#: rasterises every point it is given, so a stray 1e12 would exhaust memory.
OUTSIDE_SIDES = 1.0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def bbox_fault(bbox) -> str:
    """A COCO `bbox` must be [x, y, w, h]: four finite numbers with w and h above 0."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        return "bad-bbox"
    if not all(math.isfinite(v) for v in bbox):
        return "nan-coordinates"
    if bbox[2] <= 0 or bbox[3] <= 0:
        return "bbox-not-positive"
    return ""


def polygon_fault(polygon, height: int, width: int) -> str:
    """One polygon: at least 3 (x, y) points, finite, near the image."""
    if not isinstance(polygon, list) or not all(_is_number(v) for v in polygon):
        return "bad-polygon"
    if not polygon:
        return "empty-polygon"
    if not all(math.isfinite(v) for v in polygon):
        return "nan-coordinates"
    if len(polygon) < 6:
        return "polygon-under-3-points"
    if len(polygon) % 2:
        return "bad-polygon"
    for values, side in ((polygon[0::2], width), (polygon[1::2], height)):
        if min(values) < -OUTSIDE_SIDES * side or max(values) > (1 + OUTSIDE_SIDES) * side:
            return "coordinates-outside-image"
    return ""


def rle_string_counts(text: str) -> list[int]:
    """The run lengths of a compressed COCO RLE string (pycocotools' rleFrString); ValueError if garbled."""
    counts: list[int] = []
    value = shift = 0
    for char in text:
        code = ord(char) - 48
        if not 0 <= code < 64:
            raise ValueError(f"character {char!r} is not RLE")
        value |= (code & 0x1F) << (5 * shift)
        shift += 1
        if code & 0x20:
            continue
        if code & 0x10:
            value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if shift:
        raise ValueError("the string ends inside a number")
    return counts


def rle_fault(rle: dict, height: int, width: int) -> str:
    """An RLE mask: `size` equal to the image's [height, width], counts >= 0 summing to its pixels."""
    size, counts = rle.get("size"), rle.get("counts")
    if not isinstance(size, list) or len(size) != 2 or not all(_is_count(v) for v in size):
        return "bad-rle"
    if size != [height, width]:
        return "rle-size-mismatch"
    if isinstance(counts, str):
        try:
            counts = rle_string_counts(counts)
        except ValueError:
            return "bad-rle-counts"
    if not isinstance(counts, list) or not all(_is_count(v) for v in counts) or sum(counts) != height * width:
        return "bad-rle-counts"
    return ""


def segmentation_fault(segmentation, height: int, width: int) -> str:
    """A `segmentation`: a non-empty list of polygons, or an RLE dict, for an image of this size."""
    if segmentation is None:
        return "no-segmentation"
    if isinstance(segmentation, dict):
        return rle_fault(segmentation, height, width)
    if not isinstance(segmentation, list):
        return "bad-segmentation"
    if not segmentation:
        return "empty-polygon"
    return next((f for f in (polygon_fault(p, height, width) for p in segmentation) if f), "")
