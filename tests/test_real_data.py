"""Tests on real photos fetched from Debian packages by scripts/fetch_test_data.sh (see docs/data.md).

  $D/tuxpaint/<category>/*.png   real-photo RGBA stamps (alpha = mask): an instance bank
  $D/scratch/<scene>/*.jpg       480x360 scene photos: backgrounds
  $D/labelme_coco/               a tiny real COCO set: 3 VOC photos, 12 polygon instances

D is $CODO_TEST_DATA or <repo>/.cache/test-data; every test skips when $D/.complete is missing.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import SynthConfig, Synthesizer, SynthJob, open_source, run_synth
from codo_aug.geometry.boxes import box_iou, mask_to_box
from codo_aug.render.paint import background_view
from codo_aug.shards.reader import expand_shards, iter_records
from codo_aug.sources.decode import decode

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data")

pytestmark = pytest.mark.skipif(
    not (DATA / ".complete").is_file(),
    reason=f"real test data not in {DATA} (no .complete): run scripts/fetch_test_data.sh",
)

TUX = DATA / "tuxpaint"
SCRATCH = DATA / "scratch"
COCO_JSON = DATA / "labelme_coco" / "annotations.json"
TUX_SPEC = f"folder:{TUX}"
SCRATCH_SPEC = f"folder:{SCRATCH}"
COCO_SPEC = f"coco:{COCO_JSON}"

#: Folders the fetch script leaves out of the stamps (drawings, letters, symbols).
STAMP_SKIP = {"cartoon", "alphabets", "symbols", "seasonal", "roadsigns", "flags", "space", "naturalforces",
              "medical"}
SCENES = ["Indoors", "Nature", "Outdoors", "Sports"]
#: The classes of the 12 labelme polygons (PASCAL VOC names).
VOC_LABELS = ["bottle", "bus", "car", "chair", "person", "sofa"]

NUM_SAMPLES, SHARD_SIZE, SEED = 12, 5, 3
#: Hard pastes, no photometrics, and every visible instance kept (no visibility floor): a view differs
#: from its bare background only where boxed stamps lie.
PLAIN = SynthConfig(blend=("hard",), blend_weights=(1.0,), photometric="none", min_visibility=0.0)


# --- sources -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stamps():
    return open_source(TUX_SPEC, "instances")


@pytest.fixture(scope="module")
def scenes():
    return open_source(SCRATCH_SPEC, "backgrounds")


def test_scratch_backgrounds_load_without_skips(scenes):
    assert scenes.kind == "folder"
    assert scenes.skipped.total == 0, scenes.skipped.summary()
    assert len(scenes) >= 40
    assert scenes.labels == SCENES
    assert all(it.path.endswith(".jpg") for it in scenes.items)
    for i in range(0, len(scenes), 10):
        rgb = scenes.background(i)
        assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
        assert rgb.shape[1] == 480 and rgb.shape[0] in (359, 360)  # one Scratch photo is 480x359
        assert rgb.std() > 10  # a photo, not a flat fill


def test_tuxpaint_stamps_are_alpha_cutouts_by_category(stamps):
    assert stamps.skipped.total == 0, stamps.skipped.summary()
    assert len(stamps) >= 100
    assert {it.cutout for it in stamps.items} == {"alpha"}
    assert len(stamps.labels) >= 30
    for label in stamps.labels:
        assert (TUX / label).is_dir()
        assert not STAMP_SKIP & set(label.split("/")), label
    for it in stamps.items:
        assert it.path.startswith(it.label + "/") and "/" not in it.path[len(it.label) + 1:]
        assert not it.path.endswith("_mirror.png")


def test_tuxpaint_cutout_is_cropped_to_the_alpha_mask(stamps):
    for i in range(0, len(stamps), 16):
        full = decode(str(TUX / stamps.items[i].path), alpha=True)
        cut = stamps.cutout(i, (1.0, 0.0, 0.5, 0.5))  # rect is ignored for alpha cutouts
        x1, y1, x2, y2 = mask_to_box(full[:, :, 3] > 0).astype(int)
        assert cut.shape == (y2 - y1, x2 - x1, 4), stamps.items[i].path
        np.testing.assert_array_equal(cut, full[y1:y2, x1:x2])
        alpha = cut[:, :, 3]
        assert alpha.max() > 127 and alpha.min() < 255  # real transparency, something opaque
        # Tight: every border row and column of the crop holds some of the object.
        assert alpha[0].any() and alpha[-1].any() and alpha[:, 0].any() and alpha[:, -1].any()


# --- labelme COCO --------------------------------------------------------------------------------

def test_labelme_coco_instances_are_the_polygon_masks():
    from pycocotools.coco import COCO

    src = open_source(COCO_SPEC, "instances")
    assert src.kind == "coco"
    assert len(src) == 12  # none is crowd or below MIN_AREA / MIN_SIDE
    assert src.skipped.total == 0, src.skipped.summary()
    assert src.labels == VOC_LABELS
    assert sorted(it.label for it in src.items).count("person") == 6
    assert {it.cutout for it in src.items} == {"mask"}

    coco = COCO(str(COCO_JSON))
    anns = sorted(coco.loadAnns(coco.getAnnIds()), key=lambda a: a["id"])
    assert len(anns) == len(src)
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert names[0] == "_background_"  # the labelme quirk: category id 0 exists
    multi_polygon = 0
    for i, (item, ann) in enumerate(zip(src.items, anns)):
        img = coco.loadImgs(ann["image_id"])[0]
        assert item.path == img["file_name"] and item.path.startswith("JPEGImages/")
        assert item.label == names[ann["category_id"]]
        mask = coco.annToMask(ann).astype(bool)  # pycocotools' own rasterisation, via the COCO API
        multi_polygon += len(ann["segmentation"]) > 1
        cut = src.cutout(i, (1.0, 0.0, 0.0, 0.0))
        assert int((cut[:, :, 3] > 0).sum()) == int(mask.sum()), f"annotation {ann['id']}"
        assert set(np.unique(cut[:, :, 3]).tolist()) <= {0, 255}
        # Placed where the mask is: the crop is the mask's tight box of the full photo.
        x1, y1, x2, y2 = mask_to_box(mask).astype(int)
        np.testing.assert_array_equal(cut[:, :, 3] > 0, mask[y1:y2, x1:x2])
        rgb = np.asarray(Image.open(COCO_JSON.parent / img["file_name"]).convert("RGB"))
        np.testing.assert_array_equal(cut[:, :, :3], rgb[y1:y2, x1:x2])
        # The json's own (polygon-geometry) area agrees up to the boundary pixels (6.6% on the bottle).
        assert 0.9 * ann["area"] <= mask.sum() <= ann["area"]
    assert multi_polygon == 2  # annotations 1 (2 parts) and 11 (4 parts) are merged


def test_labelme_coco_images_as_backgrounds():
    src = open_source(COCO_SPEC, "backgrounds")
    assert len(src) == 3
    assert src.skipped.total == 0
    assert sorted(it.path for it in src.items) == [
        "JPEGImages/2011_000003.jpg", "JPEGImages/2011_000006.jpg", "JPEGImages/2011_000025.jpg"]
    meta = {im["file_name"]: (im["height"], im["width"])
            for im in json.loads(COCO_JSON.read_text())["images"]}
    for i, it in enumerate(src.items):
        assert src.background(i).shape == (*meta[it.path], 3)


def test_labelme_instances_paste_onto_labelme_backgrounds():
    ins = open_source(COCO_SPEC, "instances")
    bgs = open_source(COCO_SPEC, "backgrounds")
    synth = Synthesizer(ins, bgs, SynthConfig(), seed=1)
    for i in range(4):
        s = synth.sample(i)
        assert [v.image.shape for v in s.views] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]
        assert set(s.labels) <= set(VOC_LABELS)
        common = set.intersection(*(set(v.ids.tolist()) for v in s.views))
        assert common


# --- synthesis: tuxpaint stamps on scratch photos, through shards -------------------------------

@pytest.fixture(scope="module")
def synth_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "shards"
    job = SynthJob(out=out, num_samples=NUM_SAMPLES, seed=SEED, instances=TUX_SPEC, backgrounds=SCRATCH_SPEC,
                   shard_size=SHARD_SIZE, config=PLAIN)
    report = run_synth(job)
    return out, report


@pytest.fixture(scope="module")
def records(synth_out):
    out, _ = synth_out
    return list(iter_records(expand_shards(str(out))))


def test_synth_job_writes_three_shards_and_info(synth_out, stamps, scenes):
    out, report = synth_out
    assert report.samples == NUM_SAMPLES
    assert [s.name for s in report.shards] == ["codo-000000.tar", "codo-000001.tar", "codo-000002.tar"]
    assert [s.samples for s in report.shards] == [5, 5, 2]
    assert report.skipped == 0
    info = json.loads((out / "_info.json").read_text())
    assert info["num_samples"] == NUM_SAMPLES and info["seed"] == SEED
    assert info["sources"]["instances"]["items"] == len(stamps)
    assert info["sources"]["backgrounds"]["items"] == len(scenes)


def test_synth_records_have_three_views_and_a_shared_instance(records):
    assert [r.key for r in records] == [f"{i:09d}" for i in range(NUM_SAMPLES)]
    for r in records:
        assert [v.image.shape for v in r.views] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]
        assert [v["size"] for v in r.meta["views"]] == [224, 224, 112]
        common = set.intersection(*(set(v["ids"]) for v in r.meta["views"]))
        assert common, f"sample {r.key}: no instance in every view"
        for v in r.meta["views"]:
            assert set(v["ids"]) <= set(range(len(r.meta["labels"])))


def test_synth_boxes_and_rois_lie_in_the_view_and_agree(records):
    for r in records:
        for j, v in enumerate(r.meta["views"]):
            size = v["size"]
            boxes, rois = r.views[j].boxes, r.views[j].rois
            assert len(boxes) == len(rois) == len(v["ids"]) >= 1
            for b in (boxes, rois):
                assert (b >= 0).all() and (b <= size).all(), f"{r.key} view {j}: {b}"
                assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
            iou = np.diag(box_iou(boxes, rois))
            assert (iou > 0.3).all(), f"{r.key} view {j}: box/roi IoU {iou}"


def test_synth_labels_are_tuxpaint_categories(records, stamps):
    seen = set()
    for r in records:
        labels, files = r.meta["labels"], r.meta["instance_files"]
        assert 1 <= len(labels) <= 2 and len(files) == len(labels)
        for label, f in zip(labels, files):
            assert label in stamps.labels
            assert f.startswith(label + "/") and (TUX / f).is_file()
            seen.add(label)
        assert len(r.meta["background_files"]) == 3
        for f in r.meta["background_files"]:
            assert f.split("/")[0] in SCENES and (SCRATCH / f).is_file()
    assert len(seen) >= 5  # 12 samples draw from many of the ~60 categories


def test_synth_views_show_a_pasted_stamp_over_the_scene(records, stamps, scenes):
    """Rebuild each view's bare background from the recipe: pixels change inside the boxes, barely outside.

    Checked on the lossless in-memory render (the next test ties it to the JPEG shards). Outside the
    boxes only the stamps' soft edges (alpha <= 127, not counted as object) may change a pixel.
    """
    synth = Synthesizer(stamps, scenes, PLAIN, seed=SEED)
    for r in records:
        s = synth.sample(r.meta["index"])
        for j, (view, draw) in enumerate(zip(s.views, s.recipe.views)):
            assert scenes.items[draw.background].path == r.meta["background_files"][j]
            bare = background_view(scenes.background(draw.background, draw.size, draw.crop[0]), draw.crop,
                                   draw.size)
            if draw.flip:
                bare = bare[:, ::-1]
            changed = (view.image != bare).any(axis=2)
            inside = np.zeros(changed.shape, dtype=bool)
            for x1, y1, x2, y2 in view.boxes.astype(int):
                inside[y1:y2, x1:x2] = True
                assert changed[y1:y2, x1:x2].mean() > 0.1, f"{r.key} view {j}: box {x1, y1, x2, y2} unchanged"
            outside = changed[~inside]  # empty when a stamp larger than the view covers it (scale > 1)
            assert outside.size == 0 or outside.mean() < 0.05, f"{r.key} view {j}: change outside the boxes"


def test_synth_shards_match_a_direct_render(records, stamps, scenes):
    synth = Synthesizer(stamps, scenes, PLAIN, seed=SEED)
    for r in records[:4]:
        s = synth.sample(r.meta["index"])
        assert s.labels == r.meta["labels"]
        for j, view in enumerate(s.views):
            np.testing.assert_allclose(r.views[j].boxes, view.boxes, atol=1e-3)
            np.testing.assert_allclose(r.views[j].rois, view.rois, atol=1e-3)
            assert r.views[j].ids.tolist() == view.ids.tolist()
            err = np.abs(r.views[j].image.astype(np.int16) - view.image.astype(np.int16)).mean()
            assert err < 10, f"{r.key} view {j}: JPEG round trip off by {err:.1f} on average"
