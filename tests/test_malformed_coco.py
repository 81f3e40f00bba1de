"""Malformed COCO annotations are counted skips whose reason names the fault; the source still opens,
a mask that fails to decode later is replaced like a broken file, and summaries tell files from
annotations."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from codo_aug import InputError, SynthConfig, Synthesizer, open_source
from codo_aug.sources.base import Item, Source
from codo_aug.sources.coco import CocoMask
from codo_aug.sources.coco_checks import rle_string_counts
from codo_aug.sources.decode import BadImage
from codo_aug.sources.skips import SkipLog

W, H = 80, 60
GOOD = {"image_id": 1, "category_id": 3, "iscrowd": 0, "area": 200, "bbox": [10, 20, 20, 10],
        "segmentation": [[10, 20, 30, 20, 30, 30, 10, 30]]}
NAN = float("nan")


def compressed(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode(), "size": rle["size"]}


BLOCK = np.zeros((H, W), bool)
BLOCK[5:25, 40:70] = True
#: reason -> the fields that make an otherwise good annotation malformed
MALFORMED = {
    "polygon-under-3-points": {"segmentation": [[10, 20, 30, 20]]},
    "empty-polygon": {"segmentation": [[]]},
    "nan-coordinates": {"segmentation": [[10, 20, NAN, 20, 30, 30]]},
    "coordinates-outside-image": {"segmentation": [[10, 20, 1e12, 20, 30, 30]]},
    "bad-polygon": {"segmentation": [[10, 20, "x", 20, 30, 30]]},
    "bad-rle-counts": {"segmentation": {"counts": [0, 50], "size": [H, W]}},
    "rle-size-mismatch": {"segmentation": {"counts": [0, 100], "size": [10, 10]}},
    "bad-rle": {"segmentation": {"counts": [0, W * H]}},
    "unknown-category": {"category_id": 99},
    "bbox-not-positive": {"bbox": [10, 20, 0, 10]},
    "bad-bbox": {"bbox": [10, 20, 30]},
    "no-segmentation": {"segmentation": None},
    "unknown-image": {"image_id": 42},
}


def write_set(root: Path, annotations: list[dict]) -> Path:
    """One 80x60 photo in images/ and an instances json with `annotations` (ids from 1)."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(root / "images" / "one.png")
    data = {"images": [{"id": 1, "file_name": "one.png", "width": W, "height": H}],
            "categories": [{"id": 3, "name": "box"}, {"id": 4, "name": "never-used"}],
            "annotations": [{"id": k + 1, **ann} for k, ann in enumerate(annotations)]}
    path = root / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_each_malformed_annotation_is_a_named_annotation_skip(tmp_path):
    block = {**GOOD, "segmentation": compressed(BLOCK), "bbox": [40, 5, 30, 20], "area": 600}
    path = write_set(tmp_path, [GOOD, *({**GOOD, **fields} for fields in MALFORMED.values()), block])
    src = open_source(f"coco:{path}", "instances")
    assert len(src) == 2 and src.cut_by_counts() == {"box": 0, "mask": 2, "rect": 0}
    expected = {f"instances.json#annotation-{k + 2}": reason for k, reason in enumerate(MALFORMED)}
    assert src.skipped.reasons == expected
    assert (src.skipped.files, src.skipped.annotations) == (0, len(MALFORMED))
    # the good ones still cut out right: the 20 x 10 polygon and the 30 x 20 RLE block
    assert [src.cutout(i, (1.0, 0.0, 0.0, 0.0)).shape for i in range(2)] == [(10, 20, 4), (20, 30, 4)]
    bgs = open_source(f"coco:{path}", "backgrounds")
    synth = Synthesizer(src, bgs, SynthConfig(photometric="none"), seed=0)
    assert all(len(synth.sample(i).views) == 3 for i in range(4))


def test_a_set_of_only_malformed_annotations_is_one_input_error(tmp_path):
    path = write_set(tmp_path, [{**GOOD, **MALFORMED["empty-polygon"]}, {**GOOD, "iscrowd": 1}])
    with pytest.raises(InputError, match=r"no usable instances in .*; 2 annotations skipped "
                                         r"\(crowd: 1, empty-polygon: 1\)"):
        open_source(f"coco:{path}", "instances")


def test_a_mask_that_fails_to_decode_is_bad_image_keyed_by_annotation():
    mask = CocoMask({"counts": [0, 200], "size": [10, 10]}, 10, 10, "x.json#annotation-7")
    with pytest.raises(BadImage) as err:
        mask(10, 10)
    assert (err.value.reason, err.value.path) == ("bad-mask", "x.json#annotation-7")
    with pytest.raises(BadImage, match="size-mismatch"):
        mask(12, 10)


def test_the_synthesizer_replaces_an_instance_whose_mask_fails(tmp_path):
    path = write_set(tmp_path, [GOOD])
    good = open_source(f"coco:{path}", "instances")
    broken = CocoMask({"counts": [0, 5000], "size": [H, W]}, H, W, "instances.json#annotation-9")  # > 80 x 60
    items = [Item("one.png", "box", "mask", broken), *good.items]
    src = Source("coco", good.root, items, SkipLog())
    bgs = open_source(f"coco:{path}", "backgrounds")
    synth = Synthesizer(src, bgs, SynthConfig(instances_per_sample=(1, 1)), seed=0)
    samples = [synth.sample(i) for i in range(6)]
    assert all(s.labels == ["box"] for s in samples)
    assert synth.render_skips.reasons == {"instances.json#annotation-9": "bad-mask"}
    assert synth.render_skips.summary() == "1 annotation skipped (bad-mask: 1)"


def test_a_missing_image_is_a_file_skip_and_its_annotations_are_counted(tmp_path):
    path = write_set(tmp_path, [GOOD, {**GOOD, "image_id": 2}])
    data = json.loads(path.read_text())
    data["images"].append({"id": 2, "file_name": "gone.png", "width": W, "height": H})
    path.write_text(json.dumps(data))
    src = open_source(f"coco:{path}", "instances")
    assert src.skipped.reasons == {str(tmp_path / "images" / "gone.png"): "missing",
                                   "instances.json#annotation-2": "image-skipped"}
    assert src.skipped.summary() == "1 file skipped (missing: 1); 1 annotation skipped (image-skipped: 1)"
    assert {k: src.skipped.to_dict()[k] for k in ("total", "files", "annotations")} == \
        {"total": 2, "files": 1, "annotations": 1}


def test_an_image_whose_stored_size_differs_from_the_json_is_skipped_as_instances_only(tmp_path):
    path = write_set(tmp_path, [GOOD])
    data = json.loads(path.read_text())
    data["images"][0].update(width=H, height=W)  # transposed, as an EXIF-rotated size would be
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"1 file skipped \(size-mismatch: 1\); 1 annotation skipped"):
        open_source(f"coco:{path}", "instances")
    assert len(open_source(f"coco:{path}", "backgrounds")) == 1


def test_rle_strings_decode_as_pycocotools_encodes_them():
    rng = np.random.default_rng(1)
    for _ in range(50):
        h, w = rng.integers(1, 90, 2)
        mask = rng.random((h, w)) < rng.random()
        counts = rle_string_counts(compressed(mask)["counts"])
        runs = np.concatenate([np.full(n, k % 2, bool) for k, n in enumerate(counts)])
        assert np.array_equal(runs, mask.flatten(order="F"))
    with pytest.raises(ValueError):
        rle_string_counts("zz!!")
