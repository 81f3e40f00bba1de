"""COCO export: the same samples as a detection data set, one image per view.

`DIR/images/KEY_view{j}.jpg` and `DIR/annotations/instances.json` (bbox, RLE segmentation of the
visible part, area, categories = the instance source's classes). Each annotation also carries
`codo_sample` and `codo_instance`, so the views of one instance can be paired. Chunks of
`shard_size` samples are written as parts (`annotations/.parts/part-NNNNNN.json`, after their
images), so an interrupted export resumes and several machines can share one; the part set is
merged into instances.json once complete.
"""

from pathlib import PurePosixPath
from typing import Iterator

from ..io.jsonfiles import read_json, write_json
from ..io.storage import Folder, UrlFolder
from ..sample import Sample
from ..shards.format import encode_image, mask_rle, sample_key
from ..shards.index import JOB_FILE
from ..shards.writer import ShardStats
from .rendered import RenderedOutput, sources_info

IMAGES = "images"
ANNOTATIONS = "annotations"
PARTS = f"{ANNOTATIONS}/.parts"
INSTANCES = f"{ANNOTATIONS}/instances.json"
MAX_SLOTS = 16  # instances per sample at most (SynthConfig.instances_per_sample)


def part_name(chunk: int) -> str:
    """The part file of chunk `chunk` (its annotations, written after its images)."""
    return f"{PARTS}/part-{chunk:06d}.json"


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


def write_chunk(out: Folder, chunk: int, samples: Iterator[Sample], cat_ids: dict[str, int],
                quality: int) -> int:
    """Write the images of `samples`, then their part file (which marks the chunk done); returns the count."""
    images, anns, count = [], [], 0
    for sample in samples:
        files, imgs, ann = sample_records(sample, cat_ids, quality)
        for name, data in files:
            out.write_bytes(f"{IMAGES}/{name}", data)
        images += imgs
        anns += ann
        count += 1
    write_json(out, part_name(chunk), {"images": images, "annotations": anns})
    return count


def merge_parts(out: Folder, num_chunks: int, cats: list[dict], info: dict) -> dict | None:
    """Merge the parts into instances.json once all `num_chunks` exist; None while some are missing."""
    parts = [read_json(out, part_name(c)) for c in range(num_chunks)]
    if any(part is None for part in parts):
        return None
    images = [image for part in parts for image in part["images"]]
    anns = [ann for part in parts for ann in part["annotations"]]
    dataset = {"info": info, "licenses": [], "images": images, "annotations": anns, "categories": cats}
    write_json(out, INSTANCES, dataset)
    return {"images": len(images), "annotations": len(anns), "categories": len(cats)}


class CocoOutput(RenderedOutput):
    """A COCO set in a local folder: chunk k of `shard_size` samples is its images and then its part file;
    instances.json merges the parts once every chunk exists."""

    job_file, final_file, unit = JOB_FILE, INSTANCES, "part"

    @staticmethod
    def own_files(folder: Folder) -> list[str]:
        if isinstance(folder, UrlFolder):  # a COCO set is written to local folders only
            return []
        patterns = (f"{IMAGES}/*.jpg", f"{PARTS}/*.json", f"{ANNOTATIONS}/*.json")
        return [name for pattern in patterns for name in folder.names(pattern)]

    def finished(self) -> int:
        return len(self.folder.names(f"{PARTS}/part-*.json"))

    def done(self, unit: int) -> bool:
        return self.folder.exists(part_name(unit))

    def unit_files(self, unit: int) -> list[str]:
        return [part_name(unit)]

    def write_samples(self, unit: int, samples: Iterator[Sample], synth, job, new_skips) -> ShardStats:
        cat_ids = category_ids([it.label for it in synth.instances.items])
        count = write_chunk(self.folder, unit, samples, cat_ids, job.config.jpeg_quality)
        return ShardStats(PurePosixPath(part_name(unit)).name, count, 0, "")

    def finish(self, state: tuple, identity: dict) -> dict | None:
        synth, job = state
        cats = categories([it.label for it in synth.instances.items])
        info = {**identity, "sources": sources_info(synth, job)}
        return merge_parts(self.folder, job.split.count, cats, info)
