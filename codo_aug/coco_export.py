"""COCO export: the same samples as a detection data set, one image per view.

`DIR/images/KEY_view{j}.jpg` and `DIR/annotations/instances.json` (bbox, RLE segmentation of the
visible part, area, categories = the instance source's classes). Each annotation also carries
`codo_sample` and `codo_instance`, so the views of one instance can be paired. Chunks of
`shard_size` samples are written as parts (`annotations/.parts/part-NNNNNN.json`, after their
images), so an interrupted export resumes and several machines can share one; the part set is
merged into instances.json once complete.
"""

import json
from pathlib import Path

from .atomic import atomic_open
from .sample import Sample
from .shards.format import encode_image, mask_rle, sample_key
from .shards.writer import write_json_atomic

IMAGES = "images"
ANNOTATIONS = "annotations"
PARTS = Path(ANNOTATIONS) / ".parts"
INSTANCES = Path(ANNOTATIONS) / "instances.json"
MAX_SLOTS = 16  # instances per sample at most (SynthConfig.instances)


def part_path(out: Path, chunk: int) -> Path:
    return out / PARTS / f"part-{chunk:06d}.json"


def outputs(out: Path) -> list[Path]:
    """Files of an earlier export in `out`."""
    return sorted([*(out / IMAGES).glob("*.jpg"), *(out / PARTS).glob("*.json"),
                   *(out / ANNOTATIONS).glob("*.json")])


def category_ids(labels: list[str]) -> dict[str, int]:
    """COCO category id (from 1) of each of the instance source's classes, in name order."""
    return {name: k + 1 for k, name in enumerate(sorted(set(labels)))}


def categories(labels: list[str]) -> list[dict]:
    """The COCO `categories` list; a class without a name (images at a folder's root) is 'object'."""
    return [{"id": i, "name": name or "object", "supercategory": ""}
            for name, i in category_ids(labels).items()]


def sample_records(sample: Sample, cat_ids: dict[str, int], quality: int) -> tuple[list, list, list]:
    """(image files, image entries, annotation entries) of one sample."""
    files, images, anns = [], [], []
    n_views = len(sample.views)
    for j, view in enumerate(sample.views):
        name = f"{sample_key(sample.index)}_view{j}.jpg"
        image_id = sample.index * n_views + j + 1
        files.append((name, encode_image(view.image, "jpg", quality)))
        images.append({"id": image_id, "file_name": name, "height": int(view.image.shape[0]),
                       "width": int(view.image.shape[1]), "codo_sample": sample.index, "codo_view": j})
        for slot, box, mask in zip(view.ids.tolist(), view.boxes, view.masks):
            x1, y1, x2, y2 = (float(v) for v in box)
            anns.append({
                "id": (image_id - 1) * MAX_SLOTS + slot + 1, "image_id": image_id,
                "category_id": cat_ids[sample.labels[slot]], "bbox": [x1, y1, x2 - x1, y2 - y1],
                "segmentation": mask_rle(mask), "area": float(mask.sum()), "iscrowd": 0,
                "codo_sample": sample.index, "codo_instance": slot,
            })
    return files, images, anns


def write_chunk(out: Path, chunk: int, samples, cat_ids: dict[str, int], quality: int) -> int:
    """Write the images of `samples`, then their part file (which marks the chunk done); returns the count."""
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    (out / PARTS).mkdir(parents=True, exist_ok=True)
    images, anns, count = [], [], 0
    for sample in samples:
        files, imgs, ann = sample_records(sample, cat_ids, quality)
        for name, data in files:
            with atomic_open(out / IMAGES / name) as fh:
                fh.write(data)
        images += imgs
        anns += ann
        count += 1
    write_json_atomic(part_path(out, chunk), {"images": images, "annotations": anns})
    return count


def finish(out: Path, num_chunks: int, cats: list[dict], info: dict) -> dict | None:
    """Merge the parts into instances.json once all `num_chunks` exist; None while some are missing."""
    parts = [part_path(out, c) for c in range(num_chunks)]
    if not all(p.exists() for p in parts):
        return None
    images, anns = [], []
    for p in parts:
        data = json.loads(p.read_text())
        images += data["images"]
        anns += data["annotations"]
    dataset = {"info": info, "licenses": [], "images": images, "annotations": anns, "categories": cats}
    write_json_atomic(out / INSTANCES, dataset)
    return {"images": len(images), "annotations": len(anns), "categories": len(cats)}
