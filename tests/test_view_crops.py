"""Per-view instance crops (InsLoc): each view shows its own crop of an instance, recorded in the recipe."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from codo_aug import InputError, SynthConfig, Synthesizer, open_source
from codo_aug.recipes.recipe import PasteDraw, PhotoDraw, Recipe, ViewDraw
from codo_aug.recipes.sampler import sample_recipe
from codo_aug.render.layout import ViewRules, view_cutout
from codo_aug.render.paint import render_view

GREY = np.full((100, 100, 3), 50, np.uint8)


def coded(w: int = 60, h: int = 40) -> np.ndarray:
    """An opaque RGBA cutout whose pixels say where they are: R = 4x, G = 6y."""
    yy, xx = np.mgrid[:h, :w]
    return np.dstack([xx * 4, yy * 6, np.full((h, w), 7), np.full((h, w), 255)]).astype(np.uint8)


def one_paste(crop: tuple[float, ...]) -> ViewDraw:
    # scale 0.24 of a 100-px view = a 24-px longer side: a 24 x 24 crop is pasted unresized at (0, 0)
    paste = PasteDraw(0, 0.24, 0.0, 0.0, "hard", (), crop)
    return ViewDraw(100, 0, (1.0, 0.0, 0.0), False, (paste,), "none", ((0.0, 0.0, 0.0, 0.0),), PhotoDraw())


def test_view_cutout_is_the_drawn_rect_of_the_cutout_alpha_included():
    cut = coded()
    # area 0.25 of 60 x 40 = 600 px, aspect 1 -> 24 x 24 (sqrt 600 = 24.49); u = 0.25 of the free 36 -> x = 9,
    # v = 1 of the free 16 -> y = 16
    assert np.array_equal(view_cutout(cut, (0.25, 0.0, 0.25, 1.0)), cut[16:40, 9:33])
    # aspect 4/3 (log 0.2877): 28.28 x 21.21 -> 28 x 21, at u = v = 0
    assert view_cutout(cut, (0.25, math.log(4 / 3), 0.0, 0.0)).shape == (21, 28, 4)
    assert view_cutout(cut, ()) is cut  # no crop: the whole cutout (recipes from before view crops)


def test_two_views_of_one_instance_show_different_parts_of_it():
    cut = coded()
    top_left = render_view(one_paste((0.25, 0.0, 0.0, 0.0)), GREY, [cut], ViewRules(0.3))
    bottom_right = render_view(one_paste((0.25, 0.0, 1.0, 1.0)), GREY, [cut], ViewRules(0.3))
    # crop boxes: (0, 0)-(24, 24) and (36, 16)-(60, 40) of the cutout, each pasted at (0, 0) in its view
    assert np.array_equal(top_left.image[:24, :24], cut[:24, :24, :3])
    assert np.array_equal(bottom_right.image[:24, :24], cut[16:40, 36:60, :3])
    assert not np.array_equal(top_left.image, bottom_right.image)
    assert top_left.boxes.tolist() == bottom_right.boxes.tolist() == [[0.0, 0.0, 24.0, 24.0]]


def test_the_alpha_is_cropped_with_the_pixels():
    cut = coded()
    cut[:, :30, 3] = 0  # the left half is not object
    # u = 0.5: columns 18..42 of the cutout, of which 30..42 are object -> view columns 12..24
    half = render_view(one_paste((0.25, 0.0, 0.5, 0.0)), GREY, [cut], ViewRules(0.3))
    assert half.boxes.tolist() == [[12.0, 0.0, 24.0, 24.0]]
    assert np.array_equal(half.image[:24, 12:24], cut[:24, 30:42, :3]) and (half.image[:24, :12] == 50).all()
    # u = 0: columns 0..24, none of them object: the instance is not in this view
    assert render_view(one_paste((0.25, 0.0, 0.0, 0.0)), GREY, [cut], ViewRules(0.3)).ids.tolist() == []


def test_each_view_draws_its_own_crop_of_each_instance_in_insloc_ranges():
    on = sample_recipe(SynthConfig(instances_per_sample=(2, 2), view_crop="on"), 27, 7, seed=0, index=0)
    crops = {(j, p.slot): p.crop for j, v in enumerate(on.views) for p in v.pastes}
    assert len(crops) == 6 and len(set(crops.values())) == 6  # 3 views x 2 instances, all different
    for area, log_ratio, u, v in crops.values():
        assert 0.2 <= area <= 1.0 and math.log(3 / 4) <= log_ratio <= math.log(4 / 3)
        assert 0 <= u < 1 and 0 <= v < 1
    off = sample_recipe(SynthConfig(instances_per_sample=(2, 2), view_crop="off"), 27, 7, seed=0, index=0)
    assert all(p.crop == () for v in off.views for p in v.pastes)
    # auto crops exactly the instances whose cutouts are rectangles, drawing as "on" does for them
    auto = SynthConfig(instances_per_sample=(2, 2))
    assert sample_recipe(auto, 27, 7, seed=0, index=0, rectangular=[True] * 27) == on
    assert sample_recipe(auto, 27, 7, seed=0, index=0) == off


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A folder of 4 photos (rect cutouts) and 4 RGBA stamps (alpha cutouts), and 3 backgrounds."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    for folder in ("inst/photo", "inst/stamp", "bg"):
        (root / folder).mkdir(parents=True)
    yy, xx = np.mgrid[:40, :40]
    for i in range(4):
        photo = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(photo).save(root / "inst/photo" / f"{i}.jpg")
        stamp = rng.integers(0, 255, (40, 40, 4), dtype=np.uint8)
        stamp[..., 3] = np.where((xx - 20) ** 2 + (yy - 20) ** 2 <= 18 ** 2, 255, 0)
        Image.fromarray(stamp, "RGBA").save(root / "inst/stamp" / f"{i}.png")
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(root / "bg" / f"{i}.jpg")
    return (open_source(f"folder:{root / 'inst'}", "instances"),
            open_source(f"folder:{root / 'bg'}", "backgrounds"))


def synth(mixed, **settings) -> Synthesizer:
    cfg = SynthConfig(view_sizes=(64, 32), instances_per_sample=(2, 2), photometric="none", **settings)
    return Synthesizer(*mixed, cfg, seed=1)


def test_auto_crops_rect_cutouts_and_leaves_alpha_cutouts_whole(mixed):
    instances, _ = mixed
    assert [instances.rectangular(i) for i in range(8)] == [True] * 4 + [False] * 4
    assert all(instances.rectangular(i, "rect") for i in range(8))  # forced rects are rects
    assert not any(instances.rectangular(i, "grabcut") for i in range(8))
    auto = synth(mixed)
    seen = set()
    for i in range(12):
        recipe = auto.sample(i).recipe
        for v in recipe.views:
            for p in v.pastes:
                photo = instances.items[recipe.instances[p.slot].source].label == "photo"
                assert len(p.crop) == (4 if photo else 0)
                seen.add(photo)
    assert seen == {True, False}


def test_view_crops_replay_exactly_from_the_json_recipe(mixed):
    on = synth(mixed, view_crop="on")
    for i in range(4):
        sample = on.sample(i)
        assert any(p.crop for v in sample.recipe.views for p in v.pastes)
        again = on.render(Recipe.from_dict(json.loads(json.dumps(sample.recipe.to_dict()))))
        assert again.recipe == sample.recipe
        for a, b in zip(sample.views, again.views):
            assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes, b.boxes)
            assert np.array_equal(a.rois, b.rois) and np.array_equal(a.masks, b.masks)


def test_recipes_from_before_view_crops_still_load_and_render_the_same(mixed):
    whole = synth(mixed, view_crop="off")
    sample = whole.sample(2)
    old = json.loads(json.dumps(sample.recipe.to_dict()))
    for v in old["views"]:
        for p in v["pastes"]:
            del p["crop"]  # as written before the field existed
    recipe = Recipe.from_dict(old)
    assert recipe == sample.recipe and all(p.crop == () for v in recipe.views for p in v.pastes)
    again = whole.render(recipe)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(sample.views, again.views))


def test_view_crop_settings_are_checked():
    with pytest.raises(InputError, match=r"invalid view_crop='sometimes': must be one of auto, on, off"):
        SynthConfig(view_crop="sometimes")
    with pytest.raises(InputError, match="view_crop_area"):
        SynthConfig(view_crop_area=(0.5, 0.2))
    with pytest.raises(InputError, match="view_crop_ratio"):
        SynthConfig.from_dict({"view_crop_ratio": [0.0, 1.0]})
