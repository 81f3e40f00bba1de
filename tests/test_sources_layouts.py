"""Where sources find their files: `locate_coco` on the stock COCO layout and its variants, ImageNet
boxes from the official box tree, xml beside the images or Kaggle's Annotations/ twin, and the
minimum background side in every kind."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import InputError, open_source
from codo_aug.sources.coco import CocoFiles, locate_coco
from codo_aug.sources.folder import BOX_TREE


def photo(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def coco_json(path: Path, names: list[str], size: tuple[int, int] = (64, 48)) -> Path:
    """An instances json naming `names` (one 20 x 10 polygon each) at `path`."""
    images = [{"id": k, "file_name": n, "width": size[0], "height": size[1]} for k, n in enumerate(names)]
    anns = [{"id": k, "image_id": k, "category_id": 1, "iscrowd": 0, "bbox": [10, 20, 20, 10],
             "segmentation": [[10, 20, 30, 20, 30, 30, 10, 30]]} for k in range(len(names))]
    path.parent.mkdir(parents=True, exist_ok=True)
    cats = [{"id": 1, "name": "thing"}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def stock(root: Path, split: str, n: int = 3) -> Path:
    """ROOT/annotations/instances_<split>.json beside ROOT/<split>/ with n photos."""
    names = [f"{k:012d}.jpg" for k in range(n)]
    for k, name in enumerate(names):
        photo(root / split / name, seed=k)
    return coco_json(root / "annotations" / f"instances_{split}.json", names)


@pytest.mark.parametrize("split", ["train2017", "val2017", "minival"])
def test_coco_root_in_the_stock_layout_any_split(tmp_path, split):
    json_path = stock(tmp_path, split)
    (tmp_path / "annotations" / f"captions_{split}.json").write_text("{}")  # not an instances file
    assert locate_coco(str(tmp_path)) == CocoFiles(json_path, tmp_path / split)
    assert locate_coco(str(json_path)) == CocoFiles(json_path, tmp_path / split)
    src = open_source(f"coco:{tmp_path}", "instances")
    assert len(src) == 3 and src.root == tmp_path / split and src.skipped.total == 0


def test_coco_root_with_several_splits_prefers_train(tmp_path):
    train = stock(tmp_path, "train2017")
    stock(tmp_path, "val2017", n=1)
    assert locate_coco(str(tmp_path)).json == train
    assert len(open_source(f"coco:{tmp_path}", "backgrounds")) == 3
    stock(tmp_path, "train2014")
    with pytest.raises(InputError, match=r"^coco source: 3 instances jsons in .*annotations "
                                         r"\(instances_train2014.*\) and not one train split among them; "
                                         r"give the json as coco:JSON"):
        locate_coco(str(tmp_path))


def test_coco_json_with_images_beside_it_or_in_images(tmp_path):
    beside = coco_json(tmp_path / "a" / "set.json", ["x.jpg"])
    photo(tmp_path / "a" / "x.jpg")
    assert locate_coco(str(beside)).images == tmp_path / "a"
    nested = coco_json(tmp_path / "b" / "annotations" / "instances.json", ["y.jpg"])
    photo(tmp_path / "b" / "images" / "y.jpg")
    assert locate_coco(str(tmp_path / "b")) == CocoFiles(nested, tmp_path / "b" / "images")


def test_coco_json_and_explicit_images(tmp_path):
    json_path = coco_json(tmp_path / "ann" / "mine.json", ["p.jpg"])
    photo(tmp_path / "pics" / "p.jpg")
    text = f"{json_path}:{tmp_path / 'pics'}"
    assert locate_coco(text) == CocoFiles(json_path, tmp_path / "pics")
    assert open_source(f"coco:{text}", "instances").root == tmp_path / "pics"
    with pytest.raises(InputError, match=r"^finetune --train: image folder is not a directory: /nowhere$"):
        locate_coco(f"{json_path}:/nowhere", "finetune --train")
    with pytest.raises(InputError, match=r"^coco source: path does not exist: .*nope.json:/pics$"):
        locate_coco(f"{tmp_path / 'nope.json'}:/pics")


def test_coco_images_are_found_by_several_files_not_the_first(tmp_path):
    json_path = stock(tmp_path, "train2017", n=4)
    (tmp_path / "train2017" / "000000000000.jpg").unlink()  # images[0] is the missing one
    assert locate_coco(str(json_path)).images == tmp_path / "train2017"
    src = open_source(f"coco:{tmp_path}", "instances")
    assert len(src) == 3
    assert src.skipped.summary() == "1 file skipped (missing: 1); 1 annotation skipped (image-skipped: 1)"


def test_coco_without_any_of_its_images_says_where_it_looked(tmp_path):
    json_path = coco_json(tmp_path / "annotations" / "instances_train2017.json", ["a.jpg", "b.jpg"])
    with pytest.raises(InputError, match=r"^coco source: none of 2 images named in instances_train2017.json "
                                         r"\(e.g. 'a.jpg'\) is in .*train2017.*; "
                                         r"give the folder as coco:JSON:IMAGES"):
        locate_coco(str(json_path))
    photo(tmp_path / "no-json" / "z.jpg")
    with pytest.raises(InputError, match=r"^coco source: no instances json under .*no-json \(expected "
                                         r"annotations/instances_<split>.json; "
                                         r"or give the json file itself\)"):
        locate_coco(str(tmp_path / "no-json"))


def xml(path: Path, boxes: list[tuple[int, int, int, int]]) -> Path:
    """A VOC/ILSVRC box file with 1-based inclusive boxes."""
    objects = "".join(f"<object><name>n</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                      f"<ymax>{d}</ymax></bndbox></object>" for a, b, c, d in boxes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation>{objects}</annotation>")
    return path


def test_imagenet_boxes_from_the_official_box_tree_beside_the_images(tmp_path):
    for k, stem in enumerate(("n01_1", "n01_2", "n01_3")):
        photo(tmp_path / "train" / "n01" / f"{stem}.JPEG", seed=k)
    xml(tmp_path / BOX_TREE / "n01" / "n01_1.xml", [(11, 11, 30, 40), (1, 1, 64, 48)])
    xml(tmp_path / BOX_TREE / "n01" / "n01_2.xml", [(5, 6, 25, 26)])
    src = open_source(f"imagenet:{tmp_path / 'train'}", "instances")
    assert [(it.path, it.box) for it in src.items] == [
        ("n01/n01_1.JPEG", (10.0, 10.0, 30.0, 40.0)), ("n01/n01_1.JPEG", (0.0, 0.0, 64.0, 48.0)),
        ("n01/n01_2.JPEG", (4.0, 5.0, 25.0, 26.0)), ("n01/n01_3.JPEG", None)]
    assert src.describe()["cut_by"] == {"box": 3, "mask": 0, "rect": 1}
    assert src.cutout(0, (1.0, 0.0, 0.0, 0.0)).shape == (30, 20, 4)
    # as backgrounds an image is one item, however many boxes it has, and describe() has no cut_by
    bgs = open_source(f"imagenet:{tmp_path / 'train'}", "backgrounds")
    assert len(bgs) == 3 and "cut_by" not in bgs.describe()


def test_imagenet_box_tree_given_explicitly_and_the_other_layouts(tmp_path):
    photo(tmp_path / "imgs" / "n02" / "a.JPEG")
    xml(tmp_path / "boxes" / "n02" / "a.xml", [(3, 3, 12, 12)])
    src = open_source(f"imagenet:{tmp_path / 'imgs'}:{tmp_path / 'boxes'}", "instances")
    assert [it.box for it in src.items] == [(2.0, 2.0, 12.0, 12.0)]
    with pytest.raises(InputError, match=r"imagenet source: box tree: not a directory"):
        open_source(f"imagenet:{tmp_path / 'imgs'}:{tmp_path / 'imgs' / 'n02' / 'a.JPEG'}", "instances")
    # xml beside the image, and Kaggle's Data/ - Annotations/ twins
    xml(tmp_path / "imgs" / "n02" / "a.xml", [(1, 1, 8, 8)])
    beside = open_source(f"imagenet:{tmp_path / 'imgs'}", "instances")
    assert [it.box for it in beside.items] == [(0.0, 0.0, 8.0, 8.0)]
    photo(tmp_path / "ILSVRC" / "Data" / "CLS-LOC" / "train" / "n03" / "b.JPEG")
    xml(tmp_path / "ILSVRC" / "Annotations" / "CLS-LOC" / "train" / "n03" / "b.xml", [(2, 2, 9, 9)])
    kaggle = open_source(f"imagenet:{tmp_path / 'ILSVRC' / 'Data' / 'CLS-LOC' / 'train'}", "instances")
    assert [it.box for it in kaggle.items] == [(1.0, 1.0, 9.0, 9.0)]


def make_kind(kind: str, root: Path) -> str:
    """A source of `kind` holding a 64 x 48 photo and a 40 x 20 one; returns its spec."""
    folder = {"folder": root, "imagenet": root / "cls", "coco": root / "train2017"}[kind]
    photo(folder / "big.jpg")
    photo(folder / "small.jpg", 40, 20, seed=1)
    if kind == "coco":
        coco_json(root / "annotations" / "instances_train2017.json", ["big.jpg"])
        data = json.loads((root / "annotations" / "instances_train2017.json").read_text())
        data["images"].append({"id": 9, "file_name": "small.jpg", "width": 40, "height": 20})
        (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return f"{kind}:{root}"


@pytest.mark.parametrize("kind", ["folder", "imagenet", "coco"])
def test_every_kind_skips_backgrounds_below_the_minimum_side(tmp_path, kind):
    spec = make_kind(kind, tmp_path)
    src = open_source(spec, "backgrounds", min_side=32)
    assert [Path(it.path).name for it in src.items] == ["big.jpg"]
    assert dict(src.skipped.counts) == {"too-small": 1}
    assert len(open_source(spec, "backgrounds", min_side=20)) == 2
