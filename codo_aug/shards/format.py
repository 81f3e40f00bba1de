"""One sample <-> the members of its WebDataset record (`KEY.view{j}.{jpg,png}`, `KEY.json`)."""

import json
from dataclasses import dataclass

import cv2
import numpy as np

from ..pipeline import Sample
from ..render.compose import View

KEY_DIGITS = 9
IMAGE_FORMATS = ("jpg", "png")


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
    """RGB uint8 array of encoded JPEG/PNG bytes."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("undecodable image member")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _boxes(a: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 3) for x in row] for row in a]


def sample_meta(sample: Sample, seed: int) -> dict:
    """The JSON member: per-view boxes, rois and ids, instance classes, provenance and the recipe."""
    return {
        "key": sample_key(sample.index),
        "index": sample.index,
        "seed": seed,
        "views": [
            {"size": int(v.image.shape[0]), "boxes": _boxes(v.boxes), "rois": _boxes(v.rois), "ids": v.ids.tolist()}
            for v in sample.views
        ],
        "labels": sample.labels,
        "instance_files": sample.instance_files,
        "background_files": sample.background_files,
        "recipe": sample.recipe.to_dict(),
    }


def encode_sample(sample: Sample, seed: int, fmt: str = "jpg", quality: int = 95) -> list[tuple[str, bytes]]:
    """(member name, bytes) in record order: every view image, then the JSON."""
    key = sample_key(sample.index)
    members = [(f"{key}.view{j}.{fmt}", encode_image(v.image, fmt, quality)) for j, v in enumerate(sample.views)]
    meta = json.dumps(sample_meta(sample, seed), separators=(",", ":"), sort_keys=True).encode()
    members.append((f"{key}.json", meta))
    return members


@dataclass
class Record:
    """A sample read back from a shard: its views (no masks) and the parsed JSON."""

    key: str
    views: list[View]
    meta: dict

    @property
    def __key__(self) -> str:
        """The WebDataset key, under WebDataset's name for it."""
        return self.key


def decode_record(key: str, members: dict[str, bytes]) -> Record:
    """Record from the member suffixes of one key ('view0.jpg', ..., 'json')."""
    meta = json.loads(members["json"])
    views = []
    for j, v in enumerate(meta["views"]):
        data = next((members[f"view{j}.{fmt}"] for fmt in IMAGE_FORMATS if f"view{j}.{fmt}" in members), None)
        if data is None:
            raise ValueError(f"record {key} lacks view{j}")
        views.append(View(
            decode_image(data),
            np.asarray(v["boxes"], dtype=np.float32).reshape(-1, 4),
            np.asarray(v["rois"], dtype=np.float32).reshape(-1, 4),
            np.asarray(v["ids"], dtype=np.int64),
        ))
    return Record(key, views, meta)
