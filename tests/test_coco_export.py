"""--format coco: pycocotools loads the export, and COCOeval of the ground truth against itself is AP 1.0."""

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from codo_aug import InputError, SynthConfig, SynthJob, run_synth
from codo_aug.io.storage import Folder
from codo_aug.shards.verify import load_info

from .helpers import cli


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("coco") / "set"
    cli("codo-aug", "synth", "--format", "coco", "--out", str(out), "--num-samples", "10",
        "--shard-size", "4", "--workers", "2", check=True)
    return out


def quiet_coco(path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_layout_and_pycocotools_load(export):
    gt = quiet_coco(export / "annotations" / "instances.json")
    assert len(gt.getImgIds()) == 30  # one image per view: 10 samples x 3 views
    assert sorted(p.name for p in (export / "images").iterdir())[:3] == [
        "000000000_view0.jpg", "000000000_view1.jpg", "000000000_view2.jpg"]
    names = {c["name"] for c in gt.loadCats(gt.getCatIds())}
    assert {"person", "chair", "bottle"} <= names and len(names) == 12
    for ann in gt.loadAnns(gt.getAnnIds()):
        mask = gt.annToMask(ann)
        assert mask.sum() == ann["area"]
        ys, xs = np.nonzero(mask)
        assert ann["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]
    # the views of one instance can be paired
    pairs = {(a["codo_sample"], a["codo_instance"]) for a in gt.loadAnns(gt.getAnnIds())}
    assert all(sum(1 for a in gt.dataset["annotations"] if (a["codo_sample"], a["codo_instance"]) == p) >= 1
               for p in pairs)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cocoeval_of_the_ground_truth_against_itself_is_ap_1(export, iou_type):
    gt = quiet_coco(export / "annotations" / "instances.json")
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "segmentation": a["segmentation"], "score": 1.0} for a in gt.dataset["annotations"]]
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)  # AP@[.5:.95]
    assert ev.stats[1] == pytest.approx(1.0)  # AP@.5


def test_export_resumes_and_matches_across_workers(export, tmp_path):
    out = tmp_path / "one"
    job = SynthJob(out=out, format="coco", num_samples=10, shard_size=4)
    run_synth(job)
    assert ((out / "annotations" / "instances.json").read_text()
            == (export / "annotations" / "instances.json").read_text())
    (out / "annotations" / ".parts" / "part-000001.json").unlink()
    (out / "annotations" / "instances.json").unlink()
    report = run_synth(job)
    assert report.resumed == 2 and report.info["images"] == 30
    assert ((out / "annotations" / "instances.json").read_text()
            == (export / "annotations" / "instances.json").read_text())
    for name in ("000000004_view1.jpg", "000000009_view2.jpg"):
        assert (out / "images" / name).read_bytes() == (export / "images" / name).read_bytes()
    data = json.loads((out / "annotations" / "instances.json").read_text())
    assert data["info"]["seed"] == 0 and data["info"]["format"]["kind"] == "coco"
    assert mask_utils.area(data["annotations"][0]["segmentation"]) == data["annotations"][0]["area"]
    assert SynthConfig().to_dict() == data["info"]["config"]


def test_verify_says_a_coco_export_is_not_shards(export):
    with pytest.raises(InputError, match=f"^{export} holds a COCO export \\(annotations/instances.json\\), "
                                         "not shards: verify checks shard folders"):
        load_info(Folder(export))
