"""Fine-tuning data: every image checked against its json (EXIF included) before training; always a result."""

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from codo_aug.errors import InputError
from codo_aug.sources.coco import CocoFiles
from codo_train.evaluate.coco_detection import CocoDetection
from codo_train.evaluate.finetune import evaluate
from codo_train.evaluate.finetune_config import locate_val

from .helpers import cli

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")


def save_jpeg(path, pixels: np.ndarray, orientation: int = 1) -> None:
    """A JPEG of `pixels` as stored, with an EXIF orientation tag when it is not 1."""
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())


def left_red(width: int, height: int) -> np.ndarray:
    """An upright picture whose left half is red and right half blue: its orientation can be read back."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2, 0] = 255
    img[:, width // 2:, 2] = 255
    return img


def write_set(folder, images: dict[str, tuple[int, int]]) -> CocoFiles:
    """A COCO json over `images` {file name: (json width, json height)}, one square annotation each."""
    entries = [{"id": i, "file_name": name, "width": w, "height": h}
               for i, (name, (w, h)) in enumerate(images.items(), 1)]
    anns = [{"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "area": 100, "bbox": [2, 2, 10, 10],
             "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]]} for i in range(1, len(entries) + 1)]
    path = folder / "instances.json"
    categories = [{"id": 1, "name": "thing"}]
    path.write_text(json.dumps({"images": entries, "annotations": anns, "categories": categories}))
    return CocoFiles(path, folder)


@pytest.fixture
def mixed(tmp_path) -> CocoFiles:
    """Four images: plain; EXIF-rotated with the json's size as stored (skipped); EXIF-rotated with the
    json's size upright (kept); missing (skipped)."""
    save_jpeg(tmp_path / "plain.jpg", left_red(40, 30))
    save_jpeg(tmp_path / "stored.jpg", left_red(40, 30), orientation=6)  # upright 30x40, json says 40x30
    save_jpeg(tmp_path / "upright.jpg", np.rot90(left_red(40, 30)).copy(), orientation=6)  # upright 40x30
    return write_set(tmp_path, {"plain.jpg": (40, 30), "stored.jpg": (40, 30), "upright.jpg": (40, 30),
                                "gone.jpg": (40, 30)})


def test_images_that_do_not_match_their_json_are_counted_skips_with_one_warning(mixed, caplog):
    with caplog.at_level(logging.WARNING, "codo_train"):
        data = CocoDetection(mixed)
    assert [data.coco.imgs[i]["file_name"] for i in data.ids] == ["plain.jpg", "upright.jpg"]
    assert data.skipped.counts == {"size-mismatch": 1, "missing": 1}
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("--coco: skipped 2 of 4 annotated image(s) (missing: 1, size-mismatch: 1)")
    assert "stored.jpg: size-mismatch (30x40 after EXIF orientation 6, json says 40x30)" in warning


def test_an_exif_rotated_image_annotated_upright_trains_upright(mixed):
    data = CocoDetection(mixed)
    for k in range(len(data)):
        image, target = data[k]
        assert image.shape == (3, 30, 40) and target["masks"].shape == (1, 30, 40)
        assert image[0, :, :20].mean() > 0.9 and image[0, :, 20:].mean() < 0.1, "left half red, as annotated"
        assert target["masks"][0, 2:12, 2:12].all() and target["boxes"].tolist() == [[2.0, 2.0, 12.0, 12.0]]


def test_no_usable_image_is_one_error(tmp_path):
    save_jpeg(tmp_path / "stored.jpg", left_red(40, 30), orientation=6)
    files = write_set(tmp_path, {"stored.jpg": (40, 30), "gone.jpg": (40, 30)})
    message = r"^--val: no usable image: skipped 2 of 2 annotated image\(s\) \(missing: 1, size-mismatch: 1\)"
    with pytest.raises(InputError, match=message):
        CocoDetection(files, option="--val")


class Blind(torch.nn.Module):
    """A detector that never detects anything."""

    def forward(self, images):
        return [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                 "scores": torch.zeros(0), "masks": torch.zeros(0, 1, *im.shape[1:])} for im in images]


def test_no_detection_still_gives_the_12_number_summaries_and_says_so(mixed, capsys, caplog):
    data = CocoDetection(mixed)
    with caplog.at_level(logging.WARNING, "codo_train"):
        stats = evaluate(Blind(), data, torch.device("cpu"))
    assert "the model made no detection on the 2 validation image(s)" in caplog.records[-1].getMessage()
    # every annotation is small: 0 where there is ground truth, -1 (pycocotools: none) for medium and large
    expected = [0.0, 0.0, 0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0]
    assert stats == {"bbox": expected, "segm": expected}
    printed = capsys.readouterr().out
    assert printed.count("(AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.000") == 2
    assert printed.count("(AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000") == 2


def test_malformed_annotations_are_left_out_before_training_or_cocoeval_reads_them(tmp_path, caplog):
    """A segmentation of two points, an RLE of the wrong size and a NaN box crashed annToMask (training) or
    COCOeval (--val); they are left out, counted in one warning, and the rest trains and evaluates."""
    for name in ("a.jpg", "b.jpg"):
        save_jpeg(tmp_path / name, left_red(40, 30))
    files = write_set(tmp_path, {"a.jpg": (40, 30), "b.jpg": (40, 30)})
    data = json.loads(files.json.read_text())
    good = data["annotations"][0]
    data["annotations"] += [
        {**good, "id": 3, "segmentation": [[2, 2, 12, 2]]},
        {**good, "id": 4, "segmentation": {"size": [10, 10], "counts": [100]}},
        {**good, "id": 5, "image_id": 2, "bbox": [2, 2, float("nan"), 10]},
    ]
    files.json.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, "codo_train"):
        val = CocoDetection(files, option="--val")
    assert sorted(val.coco.anns) == [1, 2]
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"--val: left out 3 malformed annotation(s) of {files.json} (")
    assert "first: annotation id 3 (" in warning
    for k in range(len(val)):
        assert val[k][1]["masks"].shape == (1, 30, 40)
    assert evaluate(Blind(), val, torch.device("cpu"))["segm"][0] == 0.0


def test_finetune_cli_with_no_usable_image_fails_in_one_line(tmp_path):
    save_jpeg(tmp_path / "stored.jpg", left_red(40, 30), orientation=6)
    files = write_set(tmp_path, {"stored.jpg": (40, 30)})
    proc = cli("codo-train", "finetune", "--weights", "none", "--coco", str(files.json),
               "--val", str(tmp_path), "--iters", "1")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("codo-train: error: --coco: no usable image: "
                                  "skipped 1 of 1 annotated image(s) (size-mismatch: 1)")


def stock_layout(root):
    """The fetched labelme set as a stock COCO tree (annotations/instances_train2017.json beside train2017/),
    with one more image that is EXIF-rotated against its json and one that is missing."""
    data = json.loads((DATA / "labelme_coco" / "annotations.json").read_text())
    (root / "annotations").mkdir(parents=True)
    images = root / "train2017"
    shutil.copytree(DATA / "labelme_coco" / "JPEGImages", images)
    first = data["images"][0]
    for img in data["images"]:
        img["file_name"] = img["file_name"].removeprefix("JPEGImages/")
    stored = np.asarray(Image.open(images / first["file_name"]).convert("RGB"))
    save_jpeg(images / "rotated.jpg", stored, orientation=6)
    extra = [{**first, "id": 100, "file_name": "rotated.jpg"}, {**first, "id": 101, "file_name": "gone.jpg"}]
    anns = [a for a in data["annotations"] if a["image_id"] == first["id"]]
    data["images"] += extra
    data["annotations"] += [{**a, "id": 1000 + 10 * e["id"] + j, "image_id": e["id"]}
                            for e in extra for j, a in enumerate(anns)]
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return root


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / ".complete").is_file(), reason=f"no real test data in {DATA}")
def test_finetune_reads_a_stock_coco_root_and_skips_what_does_not_match(tmp_path):
    root = stock_layout(tmp_path / "coco")
    val = root / "annotations" / "instances_train2017.json"
    proc = cli("codo-train", "finetune", "--weights", "none", "--coco", str(root), "--val", str(val),
               "--iters", "1", "--arch", "resnet18", "--min-size", "64", "--rois-per-image", "32",
               "--proposals", "50", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, warnings  # --coco and --val: the same set, the same two skips
    assert all("skipped 2 of 5 annotated image(s) (missing: 1, size-mismatch: 1)" in w for w in warnings)
    stats = json.loads(proc.stdout)
    assert set(stats) == {"bbox", "segm", "iters"} and all(len(stats[k]) == 12 for k in ("bbox", "segm"))


def test_val_as_a_stock_root_is_refused_when_its_json_is_the_train_split(tmp_path):
    for split in ("train2017", "val2017"):
        (tmp_path / split).mkdir()
        save_jpeg(tmp_path / split / "a.jpg", left_red(40, 30))
        files = write_set(tmp_path / split, {"a.jpg": (40, 30)})
        (tmp_path / "annotations").mkdir(exist_ok=True)
        files.json.rename(tmp_path / "annotations" / f"instances_{split}.json")
    with pytest.raises(InputError) as error:
        locate_val(str(tmp_path))
    assert str(error.value) == (f"--val {tmp_path}: that folder's json is a train split "
                                "(instances_train2017.json); give the validation json itself, e.g. --val "
                                f"{tmp_path / 'annotations' / 'instances_val2017.json'}")
    assert locate_val(str(tmp_path / "annotations" / "instances_val2017.json")).images == tmp_path / "val2017"
