"""The used-by line on stock layouts built from the fetched real photos (see test_real_data.py):

  coco/annotations/instances_{train,val}2017.json + coco/{train,val}2017/   labelme photos and polygons,
      Scratch scenes; quirks: crowd, images without annotations, empty categories, a missing image,
      malformed annotations, grey, CMYK, RGBA PNG, EXIF-rotated
  imagenet/train/<wnid>/*.JPEG + imagenet/ILSVRC2012_bbox_train_v2/<wnid>/*.xml   Tux Paint stamps
      pasted on Scratch scenes; quirks: images without xml, a malformed xml, grey, CMYK, RGBA PNG,
      EXIF-rotated

`codo-aug synth --instances imagenet:... --backgrounds coco:ROOT` runs end to end; shards are read
with `webdataset` and `_info.json` counts are checked by reason and by cutout kind.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image
from pycocotools import mask as mask_utils

from codo_aug import open_source
from codo_aug.shards.reader import expand_shards
from codo_aug.sources.decode import decode
from codo_aug.sources.folder import BOX_TREE

from .helpers import cli
from .test_real_data import COCO_JSON, DATA, SCRATCH, TUX, VOC_LABELS

pytestmark = pytest.mark.skipif(not (DATA / ".complete").is_file(), reason=f"real test data not in {DATA}")

LABELME = COCO_JSON.parent
#: train2017 file -> (how it is made, its photo: from labelme (with its annotations) or Scratch)
COCO_TRAIN = {
    "000000000001.jpg": ("copy", "JPEGImages/2011_000003.jpg"),
    "000000000002.jpg": ("cmyk", "JPEGImages/2011_000025.jpg"),
    "000000000003.jpg": ("exif", "JPEGImages/2011_000006.jpg"),
    "000000000004.jpg": ("grey", "JPEGImages/2011_000003.jpg"),
    "000000000005.png": ("rgba", "Nature/canyon.jpg"),
    "000000000006.jpg": ("copy", "Nature/beach-malibu.jpg"),
    "000000000007.jpg": ("copy", "Sports/baseball-field.jpg"),
    "000000000008.jpg": ("missing", "Nature/flower-bed.jpg"),
}
#: Fields that make a copy of a good annotation malformed, with the reason it is skipped for.
MALFORMED = [
    ({"segmentation": [[10, 20, 30, 20]]}, "polygon-under-3-points"),
    ({"segmentation": []}, "empty-polygon"),
    ({"segmentation": [[10, 20, float("nan"), 20, 30, 30]]}, "nan-coordinates"),
    ({"segmentation": {"counts": [0, 50], "size": [338, 500]}}, "bad-rle-counts"),
    ({"segmentation": {"counts": [0, 100], "size": [10, 10]}}, "rle-size-mismatch"),
    ({"category_id": 77}, "unknown-category"),
    ({"bbox": [10, 20, 0, 10]}, "bbox-not-positive"),
    ({"bbox": [10, 20, -5, 10]}, "bbox-not-positive"),
]
COCO_INSTANCES = 12 + 3  # labelme's 12 polygons, and the grey copy's 3
COCO_ANNOTATION_SKIPS = {"crowd": 1, "image-skipped": 1, "bbox-not-positive": 2, "bad-rle-counts": 1,
                         "empty-polygon": 1, "nan-coordinates": 1, "polygon-under-3-points": 1,
                         "rle-size-mismatch": 1, "unknown-category": 1}
#: wnid -> (Tux Paint folder, one variant per image)
IMAGENET = {
    "n02084071": ("animals/mammals", ["plain", "grey", "no-xml", "rgba-png"]),
    "n07739125": ("food/fruit", ["two-boxes", "cmyk", "exif", "bad-xml"]),
    "n04490091": ("vehicles/auto", ["plain", "no-xml"]),
}
IMAGENET_CUT_BY = {"box": 7, "mask": 0, "rect": 4}
ORIENTATION = 0x0112


def with_exif_rotation(jpeg: bytes) -> bytes:
    """The same JPEG with an EXIF 'rotate 90 CW' segment: stored pixels unchanged, shown portrait."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    data = exif.tobytes()
    return jpeg[:2] + b"\xff\xe1" + (len(data) + 2).to_bytes(2, "big") + data + jpeg[2:]


def write_photo(path: Path, source: Path, how: str) -> None:
    """The JPEG `source` written as `how` says: its bytes ('copy'), with an EXIF rotation tag added
    ('exif': same stored pixels), re-encoded 'grey' or 'cmyk', or as an 'rgba' PNG with a soft alpha."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if how in ("copy", "exif"):
        data = source.read_bytes()
        path.write_bytes(with_exif_rotation(data) if how == "exif" else data)
        return
    rgb = decode(str(source))
    if how == "rgba":
        alpha = np.linspace(64, 255, rgb.shape[1]).astype(np.uint8)[None].repeat(rgb.shape[0], 0)
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    else:
        Image.fromarray(rgb).convert({"grey": "L", "cmyk": "CMYK"}[how]).save(path, quality=95)


def labelme_anns(labelme: dict, file_name: str, image_id: int, first_id: int) -> list[dict]:
    old = next(im["id"] for im in labelme["images"] if im["file_name"] == file_name)
    anns = [a for a in labelme["annotations"] if a["image_id"] == old]
    return [{**a, "id": first_id + k, "image_id": image_id} for k, a in enumerate(anns)]


def quirk_anns(good: dict, height: int, width: int) -> list[dict]:
    """A crowd copy of `good` (compressed RLE), malformed copies, and one on the missing image."""
    mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(good["segmentation"], height, width)))
    rle = mask_utils.encode(np.asfortranarray(mask))
    crowd = {**good, "iscrowd": 1, "segmentation": {"counts": rle["counts"].decode(), "size": rle["size"]}}
    malformed = [{**good, **fields} for fields, _ in MALFORMED]
    return [{**a, "id": 500 + k} for k, a in enumerate([crowd, *malformed, {**good, "image_id": 8}])]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stock") / "coco"
    labelme = json.loads(COCO_JSON.read_text())
    images, anns = [], []
    for image_id, (name, (how, origin)) in enumerate(COCO_TRAIN.items(), start=1):
        from_labelme = origin.startswith("JPEGImages/")
        source = (LABELME if from_labelme else SCRATCH) / origin
        if how != "missing":
            write_photo(root / "train2017" / name, source, how)
        width, height = Image.open(source).size  # stored size, as COCO's json gives it
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        if from_labelme:
            anns += labelme_anns(labelme, origin, image_id, 100 * image_id)
    anns += quirk_anns(anns[0], images[0]["height"], images[0]["width"])
    train = {"images": images, "annotations": anns, "categories": labelme["categories"]}  # most are empty
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(train))
    write_photo(root / "val2017" / "000000000100.jpg", SCRATCH / "Nature/canyon.jpg", "copy")
    val = {"images": [{"id": 100, "file_name": "000000000100.jpg", "width": 480, "height": 360}],
           "annotations": [], "categories": labelme["categories"]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(val))
    return root


def voc_xml(path: Path, size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> None:
    """An ILSVRC box file; `boxes` are 0-based [x1, x2) pixel boxes, written 1-based inclusive."""
    objects = "".join(f"<object><name>{path.parent.name}</name><bndbox><xmin>{x1 + 1}</xmin>"
                      f"<ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
                      for x1, y1, x2, y2 in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>{objects}"
                    "</annotation>")


def stamp_photo(stamp: Path, scene: Path, out: Path) -> tuple[int, int, int, int]:
    """A Tux Paint stamp (fit into 120 px) pasted on a 240 x 180 Scratch scene, saved as the JPEG
    `out`; returns the stamp's box."""
    rgba = Image.open(stamp).convert("RGBA")
    rgba.thumbnail((120, 120))
    canvas = Image.open(scene).convert("RGB").resize((240, 180))
    canvas.paste(rgba, (60, 30), rgba)
    canvas.save(out, quality=95)
    x1, y1, x2, y2 = rgba.getchannel("A").getbbox()
    return 60 + x1, 30 + y1, 60 + x2, 30 + y2


@pytest.fixture(scope="module")
def imagenet_root(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("stock")
    root, pasted = work / "imagenet", work / "pasted.jpg"
    scenes = sorted(SCRATCH.glob("Outdoors/*.jpg"))
    for wnid, (folder, variants) in IMAGENET.items():
        stamps = sorted(p for p in (TUX / folder).glob("*.png") if min(Image.open(p).size) >= 40)
        for k, variant in enumerate(variants):
            stem = f"{wnid}_{k}"
            box = stamp_photo(stamps[k], scenes[k], pasted)
            how = {"rgba-png": "rgba", "grey": "grey", "cmyk": "cmyk", "exif": "exif"}.get(variant, "copy")
            write_photo(root / "train" / wnid / (f"{stem}.png" if how == "rgba" else f"{stem}.JPEG"),
                        pasted, how)
            xml = root / BOX_TREE / wnid / f"{stem}.xml"
            boxes = [box, (0, 0, 240, 180)] if variant == "two-boxes" else [box]
            if variant == "bad-xml":
                xml.write_text("<annotation><object><bndbox>")
            elif variant not in ("no-xml", "rgba-png"):
                voc_xml(xml, (240, 180), boxes)
    return root


def cutouts_by_file(src) -> dict[str, list[np.ndarray]]:
    """Every mask cutout of a COCO source, by image file, in annotation order."""
    cuts: dict[str, list[np.ndarray]] = {}
    for i, it in enumerate(src.items):
        cuts.setdefault(it.path, []).append(src.cutout(i, (1.0, 0.0, 0.0, 0.0)))
    return cuts


def test_stock_coco_set_as_instances_and_backgrounds(coco_root):
    inst = open_source(f"coco:{coco_root}", "instances", min_side=8)
    assert inst.root == coco_root / "train2017" and len(inst) == COCO_INSTANCES
    assert inst.cut_by_counts() == {"box": 0, "mask": COCO_INSTANCES, "rect": 0}
    assert set(inst.labels) == set(VOC_LABELS)
    skipped = inst.skipped.to_dict()
    assert skipped["by_reason"] == {"missing": 1, **COCO_ANNOTATION_SKIPS}
    assert (skipped["files"], skipped["annotations"]) == (1, sum(COCO_ANNOTATION_SKIPS.values()))
    cuts = cutouts_by_file(inst)
    labelme = cutouts_by_file(open_source(f"coco:{COCO_JSON}", "instances"))
    # the EXIF-tagged copy has the original's stored pixels: its masks cut exactly the same pixels
    assert len(cuts["000000000003.jpg"]) == 6
    pairs = zip(cuts["000000000003.jpg"], labelme["JPEGImages/2011_000006.jpg"], strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)
    for name, origin in (("000000000002.jpg", "2011_000025.jpg"), ("000000000004.jpg", "2011_000003.jpg")):
        for cut, ref in zip(cuts[name], labelme[f"JPEGImages/{origin}"], strict=True):
            assert np.array_equal(cut[..., 3], ref[..., 3])  # the same masks on re-encoded pixels
            grey = ref[..., :3].astype(float) @ [0.299, 0.587, 0.114]
            want = grey[..., None] if name == "000000000004.jpg" else ref[..., :3]
            assert np.abs(cut[..., :3].astype(float) - want).mean() < 6, name
    for cut in cuts["000000000004.jpg"]:
        assert (cut[..., 0] == cut[..., 1]).all() and (cut[..., 1] == cut[..., 2]).all()  # grey, as RGB

    bgs = open_source(f"coco:{coco_root}", "backgrounds", min_side=32)
    assert sorted(it.path for it in bgs.items) == sorted(set(COCO_TRAIN) - {"000000000008.jpg"})
    assert dict(bgs.skipped.counts) == {"missing": 1}
    shapes = {it.path: bgs.background(i).shape for i, it in enumerate(bgs.items)}
    assert shapes["000000000003.jpg"] == (500, 375, 3)  # shown upright
    assert shapes["000000000005.png"] == (360, 480, 3)


def test_imagenet_tree_with_the_official_box_folder(imagenet_root):
    src = open_source(f"imagenet:{imagenet_root / 'train'}", "instances", min_side=8)
    assert src.cut_by_counts() == IMAGENET_CUT_BY and src.labels == sorted(IMAGENET)
    assert dict(src.skipped.counts) == {"bad-xml": 1}
    exif = next(i for i, it in enumerate(src.items) if it.path == "n07739125/n07739125_2.JPEG")
    x1, y1, x2, y2 = (int(v) for v in src.items[exif].box)
    stored = decode(str(imagenet_root / "train" / src.items[exif].path), exif=False)
    # the xml box indexes the stored (landscape) pixels, not the EXIF-rotated ones
    np.testing.assert_array_equal(src.cutout(exif, (1.0, 0.0, 0.0, 0.0))[..., :3], stored[y1:y2, x1:x2])


def read_shards(out: Path) -> list[dict]:
    """Every sample as webdataset decodes it from the shards, unchanged."""
    urls = expand_shards(str(out / "*.tar"))
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8"))


def test_used_by_line_imagenet_instances_on_stock_coco_backgrounds(coco_root, imagenet_root, tmp_path):
    out = tmp_path / "shards"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "12", "--shard-size", "5", "--seed", "2",
        "--instances", f"imagenet:{imagenet_root / 'train'}", "--backgrounds", f"coco:{coco_root}",
        check=True)
    records = read_shards(out)
    assert [r["__key__"] for r in records] == [f"{i:09d}" for i in range(12)]
    for r in records:
        assert [r[f"view{j}.jpg"].shape for j in range(3)] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]
        assert set(r["json"]["labels"]) <= set(IMAGENET)
        assert set(r["json"]["background_files"]) <= set(COCO_TRAIN) - {"000000000008.jpg"}
    info = json.loads((out / "_info.json").read_text())
    inst, bgs = info["sources"]["instances"], info["sources"]["backgrounds"]
    assert (inst["kind"], inst["items"], inst["cut_by"]) == ("imagenet", 11, IMAGENET_CUT_BY)
    assert (inst["skipped"]["by_reason"], inst["skipped"]["files"]) == ({"bad-xml": 1}, 1)
    assert (bgs["kind"], bgs["root"], bgs["items"]) == ("coco", str(coco_root / "train2017"), 7)
    assert bgs["skipped"]["by_reason"] == {"missing": 1} and "cut_by" not in bgs
    assert info["render_skipped"]["total"] == 0


def test_stock_coco_root_as_instances_end_to_end(coco_root, tmp_path):
    out = tmp_path / "shards"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "6", "--instances", f"coco:{coco_root}",
        "--backgrounds", f"coco:{coco_root}", check=True)
    records = read_shards(out)
    assert len(records) == 6 and all(set(r["json"]["labels"]) <= set(VOC_LABELS) for r in records)
    inst = json.loads((out / "_info.json").read_text())["sources"]["instances"]
    assert (inst["items"], inst["cut_by"]) == (COCO_INSTANCES, {"box": 0, "mask": COCO_INSTANCES, "rect": 0})
    assert inst["skipped"]["by_reason"] == {"missing": 1, **COCO_ANNOTATION_SKIPS}
    assert inst["skipped"]["examples"]["crowd"] == ["instances_train2017.json#annotation-500"]
