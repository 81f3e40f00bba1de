"""CoDoMultiView: a torchvision-v2 detection sample in, per-view tv_tensors out, composable with v2."""

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2
from torchvision.transforms import v2

from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as F

from codo_aug import SynthConfig
from codo_aug.dataset import collate_views
from codo_aug.transforms import CoDoMultiView


def tv_sample(with_masks: bool = False) -> dict:
    """A 120x160 image with a red 40x30 block at (20, 10) and a blue 30x50 block at (100, 60)."""
    img = np.full((120, 160, 3), 90, np.uint8)
    img[10:40, 20:60] = (255, 0, 0)
    img[60:110, 100:130] = (0, 0, 255)
    sample = {
        "image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1)),
        # CXCYWH on purpose: the transform converts formats
        "boxes": tv_tensors.BoundingBoxes([[40, 25, 40, 30], [115, 85, 30, 50]], format="CXCYWH",
                                          canvas_size=(120, 160)),
        "labels": torch.tensor([7, 9]),
    }
    if with_masks:
        masks = torch.zeros(2, 120, 160, dtype=torch.bool)
        masks[0, 10:40, 20:60] = True
        masks[1, 60:110, 100:130] = True
        sample["masks"] = tv_tensors.Mask(masks)
    return sample


CFG = SynthConfig(instances_per_sample=(2, 2), photometric="none", blend=("hard",), blend_weights=(1.0,),
                  jitter="none")
SMALL = SynthConfig(view_sizes=(64, 32), instances_per_sample=(1, 2), photometric="none")
REAL = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")


def same_views(a: list, b: list) -> bool:
    """Byte-identical images and RoIs in every view."""
    return all(torch.equal(x["image"], y["image"]) and torch.equal(x["rois"], y["rois"])
               for x, y in zip(a, b))


def test_views_carry_typed_boxes_rois_masks_ids_and_labels():
    views = CoDoMultiView("sample", CFG, seed=0)(tv_sample(with_masks=True), index=4)
    assert len(views) == 3
    for view, size in zip(views, (224, 224, 112)):
        assert isinstance(view["image"], tv_tensors.Image) and view["image"].shape == (3, size, size)
        assert isinstance(view["boxes"], tv_tensors.BoundingBoxes)
        assert view["boxes"].canvas_size == (size, size)
        assert view["boxes"].format == tv_tensors.BoundingBoxFormat.XYXY
        assert isinstance(view["masks"], tv_tensors.Mask) and view["masks"].shape[1:] == (size, size)
        n = len(view["ids"])
        assert view["boxes"].shape == view["rois"].shape == (n, 4) and view["masks"].shape[0] == n
        # each instance is a solid red or blue block: its label follows the box it came from
        for k in range(n):
            x1, y1, x2, y2 = view["boxes"][k].int().tolist()
            inside = view["image"][:, y1:y2, x1:x2][:, view["masks"][k][y1:y2, x1:x2]]
            colour = inside.float().mean(dim=1)
            label = int(view["labels"][k])
            assert label == {0: 7, 1: 9}[int(view["source"][k])]
            assert (colour[0] > 200) if label == 7 else (colour[2] > 200)


def test_same_index_same_views_and_replay_by_recipe():
    t = CoDoMultiView("sample", CFG, seed=3)
    a, b = t(tv_sample(), index=2), t(tv_sample(), index=2)
    c = t(tv_sample(), index=3)
    assert same_views(a, b) and not same_views(a, c)
    assert same_views(a, t(tv_sample(), recipe=t.make_params(tv_sample(), 2)))


def test_composes_with_torchvision_v2_before_and_after():
    pipeline = v2.Compose([
        v2.RandomHorizontalFlip(p=1.0),  # sees the source image and its boxes
        CoDoMultiView("sample", CFG, seed=0),
        v2.ToDtype(torch.float32, scale=True),  # sees the list of per-view dicts
    ])
    views = pipeline(tv_sample())
    assert len(views) == 3
    for view in views:
        assert view["image"].dtype == torch.float32
        assert 0.0 <= view["image"].min() and view["image"].max() <= 1.0
        assert view["boxes"].dtype == torch.float32
    # per-view v2 ops after the split: a horizontal flip moves boxes and rois with the pixels
    flip = v2.RandomHorizontalFlip(p=1.0)
    first = CoDoMultiView("sample", CFG, seed=0)(tv_sample(), index=0)[0]
    flipped = flip(first)
    w = first["image"].shape[-1]
    assert torch.allclose(flipped["boxes"][:, 0], w - first["boxes"][:, 2])
    assert torch.allclose(flipped["rois"][:, 2], w - first["rois"][:, 0])


def test_samples_without_usable_boxes_are_none_and_collate_drops_them():
    t = CoDoMultiView("sample", CFG, seed=0)
    sample = tv_sample()
    assert CoDoMultiView("sample", SynthConfig(min_instance_side=64))(sample) is None  # both boxes < 64 px
    no_boxes = tv_tensors.BoundingBoxes(torch.zeros(0, 4), format="XYXY", canvas_size=(120, 160))
    assert t({**sample, "boxes": no_boxes, "labels": torch.zeros(0, dtype=torch.int64)}) is None
    # torchvision's COCO wrapper gives an image without annotations this target
    assert t((sample["image"], {"image_id": 5})) is None
    batch = collate_views([None, t(sample, index=1), None, t(sample, index=2)])
    assert [tuple(view["image"].shape) for view in batch] == [(2, 3, 224, 224)] * 2 + [(2, 3, 112, 112)]
    assert batch[0]["index"] == [1, 2] and len(batch[0]["boxes"]) == 2
    assert collate_views([None, None]) is None
    with pytest.raises(ValueError, match="needs a dict with 'image' and 'boxes', or an"):
        t({"image": sample["image"]})


def test_without_index_each_call_draws_from_torchs_generator():
    t = CoDoMultiView("sample", CFG, seed=0)
    torch.manual_seed(5)
    a, b = t(tv_sample()), t(tv_sample())
    torch.manual_seed(5)
    again = t(tv_sample())
    assert a[0]["index"] != b[0]["index"] and not same_views(a, b)
    assert again[0]["index"] == a[0]["index"] and same_views(again, a)
    assert same_views(t(tv_sample(), index=a[0]["index"]), a)  # the returned index replays the draw


def test_pil_plain_tensor_and_float_inputs_give_the_same_views_in_the_inputs_dtype():
    t = CoDoMultiView("sample", CFG, seed=0)
    ref = tv_sample()
    plain = {"image": ref["image"].as_subclass(torch.Tensor),
             "boxes": torch.tensor([[20, 10, 60, 40], [100, 60, 130, 110]])}  # XYXY
    pil = {**plain, "image": F.to_pil_image(ref["image"])}
    want = t(ref, index=6)
    for sample in (plain, pil):
        views = t(sample, index=6)
        assert same_views(views, want) and "labels" not in views[0]
        assert all(view["image"].dtype == torch.uint8 for view in views)
    for dtype in (torch.float32, torch.float64):  # float in [0, 1] in, float in [0, 1] out
        views = t({**plain, "image": F.to_dtype(ref["image"], dtype, scale=True)}, index=6)
        assert [view["image"].dtype for view in views] == [dtype] * 3
        assert all(torch.allclose(v["image"], w["image"].to(dtype) / 255, atol=1e-6, rtol=0)
                   for v, w in zip(views, want))


class Repeated(torch.utils.data.Dataset):
    """The same detection sample `n` times, through `t` (CoDoMultiView by default): only its draws differ."""

    def __init__(self, n: int, t: Callable | None = None):
        self.n, self.t = n, t or CoDoMultiView("sample", SMALL, seed=0)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> list:
        return self.t(tv_sample())


def draws(loader: DataLoader, epochs: int) -> list[int]:
    """The index each sample of `epochs` epochs was drawn under."""
    return [index for _ in range(epochs) for batch in loader for index in batch[0]["index"]]


def test_dataloader_workers_and_epochs_never_repeat_a_draw_and_the_seed_repeats_the_run():
    ds = Repeated(6)
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_views)
    torch.manual_seed(0)
    first = draws(loader, epochs=2)
    assert len(first) == 12 and len(set(first)) == 12  # 2 workers x 2 epochs (fresh workers each epoch)
    torch.manual_seed(0)
    assert draws(loader, epochs=2) == first
    batch = next(iter(loader))
    for b, index in enumerate(batch[0]["index"]):  # a draw made in a worker replays in this process
        replay = ds.t(tv_sample(), index=index)
        assert all(torch.equal(view["image"][b], r["image"]) for view, r in zip(batch, replay))


MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@pytest.mark.parametrize("workers", [0, 1])
def test_float_views_pass_todtype_codo_normalize_under_a_dataloader(workers):
    """`ToDtype -> CoDoMultiView -> Normalize` works as with any v2 transform (the views stay float in
    [0, 1]) and equals the uint8 views / 255, normalised, draw for draw."""
    def batches(t) -> list:
        torch.manual_seed(0)
        loader = DataLoader(Repeated(4, t), batch_size=2, num_workers=workers, collate_fn=collate_views)
        return list(loader)

    as_uint8 = batches(CoDoMultiView("sample", SMALL, seed=0))
    to_float = v2.ToDtype(torch.float32, scale=True)
    in_unit = batches(v2.Compose([to_float, CoDoMultiView("sample", SMALL, seed=0)]))
    normalised = batches(v2.Compose([to_float, CoDoMultiView("sample", SMALL, seed=0),
                                     v2.Normalize(MEAN, STD)]))
    mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    for u8, unit, norm in zip(as_uint8, in_unit, normalised):
        for a, b, c in zip(u8, unit, norm):  # per view
            assert a["index"] == b["index"] == c["index"]
            assert a["image"].dtype == torch.uint8 and b["image"].dtype == c["image"].dtype == torch.float32
            assert 0.0 <= b["image"].min() and b["image"].max() <= 1.0 and b["image"].max() > 0.5
            assert torch.allclose(b["image"], a["image"] / 255, atol=1e-6, rtol=0)
            assert torch.allclose(c["image"], (a["image"] / 255 - mean) / std, atol=1e-5, rtol=0)
            assert torch.equal(b["rois"][0], a["rois"][0])


def four_of_two(repeat: bool) -> CoDoMultiView:
    """A transform asking for 4 instances (small, all kept), for samples holding 2 boxes."""
    cfg = SynthConfig(instances_per_sample=(4, 4), repeat_instances=repeat, min_visibility=0.0,
                      scale=(0.2, 0.3), photometric="none", view_sizes=(96, 96))
    return CoDoMultiView("sample", cfg, seed=0)


def test_one_input_box_is_never_two_instances():
    t, sample = four_of_two(repeat=False), tv_sample()
    for index in range(6):
        recipe = t.make_params(sample, index)
        assert sorted(d.source for d in recipe.instances) == [0, 1]  # the pool holds 2: the sample takes 2
        for view in t(sample, index=index):
            assert len(set(view["ids"].tolist())) == len(view["ids"]) and len(view["ids"]) <= 2


def test_repeats_share_one_id():
    t, sample = four_of_two(repeat=True), tv_sample()
    doubled = 0
    for index in range(6):
        recipe = t.make_params(sample, index)
        assert len(recipe.instances) == 4 and {d.source for d in recipe.instances} == {0, 1}
        for view in t(sample, index=index):
            ids, source = view["ids"].tolist(), view["source"].tolist()
            assert set(ids) <= {0, 1}
            assert all(source[k] == recipe.instances[i].source for k, i in enumerate(ids))
            doubled += len(ids) > len(set(ids))
    assert doubled >= 6  # repeats are pasted, under the id of the instance they repeat


@pytest.fixture
def stock_coco(tmp_path) -> Path:
    """The labelme COCO set in the stock layout (annotations/instances_train2017.json beside train2017/),
    plus an image without annotations."""
    if not (REAL / ".complete").is_file():
        pytest.skip(f"real test data not in {REAL}: run scripts/fetch_test_data.sh")
    data = json.loads((REAL / "labelme_coco" / "annotations.json").read_text())
    (tmp_path / "train2017").mkdir()
    for image in data["images"]:
        name = Path(image["file_name"]).name
        shutil.copy(REAL / "labelme_coco" / image["file_name"], tmp_path / "train2017" / name)
        image["file_name"] = name
    shutil.copy(tmp_path / "train2017" / data["images"][0]["file_name"], tmp_path / "train2017" / "empty.jpg")
    data["images"].append({**data["images"][0], "id": 99, "file_name": "empty.jpg"})
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(data))
    return tmp_path


def test_wrapped_coco_detection_gives_view_pairs(stock_coco):
    def coco(transforms=None):
        ann = stock_coco / "annotations" / "instances_train2017.json"
        coco = CocoDetection(str(stock_coco / "train2017"), str(ann), transforms=transforms)
        return wrap_dataset_for_transforms_v2(coco, target_keys=("image_id", "boxes", "labels", "masks"))

    to_float = v2.ToDtype(torch.float32, scale=True)
    plain = coco()
    views = coco(v2.Compose([v2.ToImage(), CoDoMultiView("sample", SMALL, seed=0, view_transform=to_float)]))
    assert len(views) == 4 and views[3] is None  # the image without annotations is passed over
    batch = next(iter(DataLoader(views, batch_size=4, collate_fn=collate_views)))
    assert len(batch) == 2  # one (images, targets) pair per view
    for (images, targets), size in zip(batch, SMALL.view_sizes):
        assert images.shape == (3, 3, size, size) and images.dtype == torch.float32
        for k, target in enumerate(targets):
            source_labels = plain[k][1]["labels"]  # the category ids of the image's boxes
            assert torch.equal(target["labels"], source_labels[target["source"]])
            assert target["masks"].shape == (len(target["ids"]), size, size)
            assert target["boxes"].canvas_size == (size, size) and "image_id" not in target
