"""One sample <-> the members of its WebDataset record (`KEY.view{j}.{jpg,png}`, `KEY.json`)."""

import json
from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..recipes.recipe import PhotoDraw
from ..sample import Sample, View
from ..sources.decode import layout

KEY_DIGITS = 9
IMAGE_FORMATS = ("jpg", "png")
#: The signature each image format's bytes begin with.
MAGIC = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}


def sample_key(index: int) -> str:
    """Zero-padded index: a WebDataset key (no dots) that sorts in sample order."""
    return f"{index:0{KEY_DIGITS}d}"


def encode_image(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    """Deterministic JPEG (given quality) or lossless PNG bytes of an RGB array."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode("." + fmt, bgr, params)
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as {fmt}")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray:
    """RGB uint8 array of encoded JPEG/PNG bytes; ValueError when they do not decode."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        raise ValueError("undecodable image member")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def sniff_format(data: bytes | np.ndarray) -> str | None:
    """'jpg' or 'png' by the signature encoded bytes begin with; None for neither."""
    head = bytes(data[:8])
    return next((fmt for fmt, magic in MAGIC.items() if head.startswith(magic)), None)


def mask_rle(mask: np.ndarray) -> dict:
    """COCO RLE of an HxW bool mask, its counts as ASCII so it goes into JSON as it is."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(x) for x in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_masks(rles: list[dict], height: int, width: int) -> np.ndarray:
    """NxHxW bool masks of COCO RLEs with ASCII counts (as `mask_rle` writes them)."""
    if not rles:
        return np.zeros((0, height, width), bool)
    coded = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles]
    return mask_utils.decode(coded).transpose(2, 0, 1).astype(bool)


def _boxes(a: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 3) for x in row] for row in a]


def view_meta(view: View) -> dict:
    """A view's JSON: size, boxes, rois and ids, and the RLE of each instance's visible part when known."""
    meta = {"size": int(view.image.shape[0]), "boxes": _boxes(view.boxes), "rois": _boxes(view.rois),
            "ids": view.ids.tolist()}
    if view.masks is not None:
        meta["masks"] = [mask_rle(m) for m in view.masks]
    return meta


def sample_meta(sample: Sample, seed: int) -> dict:
    """The JSON member: per-view boxes, rois, ids and masks, instance classes, provenance and the recipe."""
    return {
        "key": sample_key(sample.index),
        "index": sample.index,
        "seed": seed,
        "views": [view_meta(v) for v in sample.views],
        "labels": sample.labels,
        "instance_files": sample.instance_files,
        "background_files": sample.background_files,
        "recipe": sample.recipe.to_dict(),
    }


def encode_sample(sample: Sample, seed: int, fmt: str = "jpg", quality: int = 95) -> list[tuple[str, bytes]]:
    """(member name, bytes) in record order: every view image, then the JSON."""
    key = sample_key(sample.index)
    members = [(f"{key}.view{j}.{fmt}", encode_image(v.image, fmt, quality))
               for j, v in enumerate(sample.views)]
    meta = json.dumps(sample_meta(sample, seed), separators=(",", ":"), sort_keys=True).encode()
    members.append((f"{key}.json", meta))
    return members


@dataclass
class Record:
    """A sample read back from a shard: its views (with masks, where the shard holds them) and its JSON.

    Read with `pixels=False`, each view's `image` holds its member's encoded bytes (1-D uint8) and
    `photo` the photometric draws still to apply to each view (None: nothing to apply).
    """

    key: str
    views: list[View]
    meta: dict
    photo: list[PhotoDraw] | None = None

    @property
    def __key__(self) -> str:
        """The WebDataset key, under WebDataset's name for it."""
        return self.key


def _parse_meta(members: dict[str, bytes]) -> dict:
    if "json" not in members:
        raise ValueError(f"no .json member (has {', '.join(sorted(members)) or 'none'}): not a codo record")
    try:
        meta = json.loads(members["json"])
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"the .json member does not parse ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("views"), list):
        raise ValueError("the .json member has no 'views' list: not a codo record")
    return meta


def _image_member(j: int, members: dict[str, bytes]) -> bytes:
    data = next((members[f"view{j}.{fmt}"] for fmt in IMAGE_FORMATS if f"view{j}.{fmt}" in members), None)
    if data is None:
        raise ValueError(f"no view{j} image member")
    return data


def _decoded(j: int, data: bytes) -> np.ndarray:
    try:
        return decode_image(data)
    except (ValueError, cv2.error):
        raise ValueError(f"the view{j} image member does not decode") from None


def _encoded(j: int, data: bytes, side: object) -> np.ndarray:
    """The member's bytes, left to decode on the device once its own header says it is a JPEG or PNG of
    the view's size (a corrupt body still fails there, in the trainer, naming its batch)."""
    found = layout(data)  # None: not a JPEG or PNG, or no size in its header
    if found is None:
        raise ValueError(f"the view{j} image member does not decode")
    if not isinstance(side, int) or side < 1:
        raise ValueError(f"view{j} has no positive integer 'size' (it is {side!r})")
    if (found.height, found.width) != (side, side):
        raise ValueError(f"the view{j} image member's header says {found.width}x{found.height}, "
                         f"its JSON size {side}")
    return np.frombuffer(data, np.uint8)


def _decode_view(j: int, v: dict, members: dict[str, bytes], pixels: bool) -> View:
    data = _image_member(j, members)
    image = _decoded(j, data) if pixels else _encoded(j, data, v["size"])
    boxes = np.asarray(v["boxes"], dtype=np.float32).reshape(-1, 4)
    rois = np.asarray(v["rois"], dtype=np.float32).reshape(-1, 4)
    ids = np.asarray(v["ids"], dtype=np.int64)
    counts = {"boxes": len(boxes), "rois": len(rois), "ids": len(ids), "masks": len(v.get("masks", ids))}
    if len(set(counts.values())) > 1:
        raise ValueError(f"view{j} lists " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    for what, values in (("boxes", boxes), ("rois", rois)):
        if not np.isfinite(values).all():  # JSON's NaN and Infinity parse; RoIAlign would crash on them
            raise ValueError(f"view{j} has {what} that are not finite numbers")
    if not pixels:
        return View(image, boxes, rois, ids)
    masks = rle_masks(v["masks"], *image.shape[:2]) if "masks" in v else None
    if masks is not None and masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"view{j} has {masks.shape[1]}x{masks.shape[2]} masks "
                         f"on a {image.shape[0]}x{image.shape[1]} image")
    return View(image, boxes, rois, ids, masks)


def decode_record(key: str, members: dict[str, bytes], pixels: bool = True) -> Record:
    """Record from the member suffixes of one key ('view0.jpg', ..., 'json'); ValueError saying what
    is wrong when a member is missing, does not decode or is not codo's. `pixels=False` leaves each view
    image as its encoded bytes (its own header checked against the JSON's 'size', the body not) and
    its masks undecoded (None), for decoding on a device (codo_train.device_decode)."""
    meta = _parse_meta(members)
    try:
        views = [_decode_view(j, v, members, pixels) for j, v in enumerate(meta["views"])]
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"the .json member is not a codo record ({type(exc).__name__}: {exc})") from None
    return Record(key, views, meta)
