"""CoDoMultiView: a torchvision-v2 detection sample in, per-view tv_tensors out, composable with v2."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from codo_aug import InputError, SynthConfig
from codo_aug.transforms import CoDoMultiView


def tv_sample(with_masks: bool = False) -> dict:
    """A 120x160 image with a red 40x30 block at (20, 10) and a blue 30x50 block at (100, 60)."""
    img = np.full((120, 160, 3), 90, np.uint8)
    img[10:40, 20:60] = (255, 0, 0)
    img[60:110, 100:130] = (0, 0, 255)
    sample = {
        "image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1)),
        # CXCYWH on purpose: the transform converts formats
        "boxes": tv_tensors.BoundingBoxes([[40, 25, 40, 30], [115, 85, 30, 50]], format="CXCYWH", canvas_size=(120, 160)),
        "labels": torch.tensor([7, 9]),
    }
    if with_masks:
        masks = torch.zeros(2, 120, 160, dtype=torch.bool)
        masks[0, 10:40, 20:60] = True
        masks[1, 60:110, 100:130] = True
        sample["masks"] = tv_tensors.Mask(masks)
    return sample


CFG = SynthConfig(instances=(2, 2), photometric="none", blend=("hard",), blend_weights=(1.0,), jitter="none")


def test_views_carry_typed_boxes_rois_masks_ids_and_labels():
    views = CoDoMultiView("sample", CFG, seed=0)(tv_sample(with_masks=True), index=4)
    assert len(views) == 3
    for view, size in zip(views, (224, 224, 112)):
        assert isinstance(view["image"], tv_tensors.Image) and view["image"].shape == (3, size, size)
        assert isinstance(view["boxes"], tv_tensors.BoundingBoxes) and view["boxes"].canvas_size == (size, size)
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
    assert all(torch.equal(x["image"], y["image"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["image"], y["image"]) for x, y in zip(a, c))
    recipe = t.make_params(tv_sample(), 2)
    replay = t(tv_sample(), recipe=recipe)
    assert all(torch.equal(x["image"], y["image"]) and torch.equal(x["rois"], y["rois"]) for x, y in zip(a, replay))


def test_composes_with_torchvision_v2_before_and_after():
    pipeline = v2.Compose([
        v2.RandomHorizontalFlip(p=1.0),  # sees the source image and its boxes
        CoDoMultiView("sample", CFG, seed=0),
        v2.ToDtype(torch.float32, scale=True),  # sees the list of per-view dicts
    ])
    views = pipeline(tv_sample())
    assert len(views) == 3
    for view in views:
        assert view["image"].dtype == torch.float32 and 0.0 <= view["image"].min() and view["image"].max() <= 1.0
        assert view["boxes"].dtype == torch.float32
    # per-view v2 ops after the split: a horizontal flip moves boxes and rois with the pixels
    flip = v2.RandomHorizontalFlip(p=1.0)
    first = CoDoMultiView("sample", CFG, seed=0)(tv_sample(), index=0)[0]
    flipped = flip(first)
    w = first["image"].shape[-1]
    assert torch.allclose(flipped["boxes"][:, 0], w - first["boxes"][:, 2])
    assert torch.allclose(flipped["rois"][:, 2], w - first["rois"][:, 0])


def test_unusable_samples_fail_clearly():
    t = CoDoMultiView("sample", SynthConfig(min_instance_side=64), seed=0)
    with pytest.raises(InputError, match="no box of at least 64 px"):
        t(tv_sample())
    with pytest.raises(ValueError, match="needs a dict with 'image' and 'boxes'"):
        t({"image": tv_sample()["image"]})
