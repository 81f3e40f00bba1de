"""Recipes are pure functions of (config, seed, index); rendering a recipe is deterministic."""

import json

import numpy as np
import pytest

from codo_aug import InputError, SynthConfig, Synthesizer, open_source
from codo_aug.recipes.recipe import Recipe
from codo_aug.recipes.sampler import sample_recipe
from codo_aug.render.photometric import apply_photo


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer(open_source("sample", "instances"), open_source("sample", "backgrounds"),
                       SynthConfig(), seed=7)


def test_recipe_depends_only_on_seed_and_index():
    cfg = SynthConfig()
    a = sample_recipe(cfg, 27, 7, seed=3, index=11)
    assert sample_recipe(cfg, 27, 7, seed=3, index=11) == a
    assert sample_recipe(cfg, 27, 7, seed=3, index=12) != a
    assert sample_recipe(cfg, 27, 7, seed=4, index=11) != a
    assert sample_recipe(cfg, 27, 7, seed=3, index=11, attempt=1) != a


def test_recipe_shape_follows_config():
    cfg = SynthConfig(view_sizes=(160, 96), instances_per_sample=(3, 3), jitter="none")
    r = sample_recipe(cfg, 27, 7, seed=0, index=0)
    assert [v.size for v in r.views] == [160, 96]
    assert len(r.instances) == 3
    assert len({v.background for v in r.views}) == 2  # each view its own background
    for v in r.views:
        assert sorted(p.slot for p in v.pastes) == [0, 1, 2]
        assert all(j == (0.0, 0.0, 0.0, 0.0) for j in v.jitter)
        assert all(cfg.scale[0] <= p.scale <= cfg.scale[1] for p in v.pastes)


def test_recipe_json_round_trip_renders_identical_pixels(synth):
    sample = synth.sample(5)
    text = json.dumps(sample.recipe.to_dict())
    again = synth.render(Recipe.from_dict(json.loads(text)))
    assert again.recipe == sample.recipe
    for a, b in zip(sample.views, again.views):
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.rois, b.rois)
        assert np.array_equal(a.ids, b.ids)


def test_sample_is_independent_of_what_was_made_before(synth):
    fresh = Synthesizer(synth.instances, synth.backgrounds, synth.config, seed=7)
    for i in (9, 2, 30):
        synth.sample(i)
    a, b = synth.sample(4), fresh.sample(4)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a.views, b.views))


def test_deferred_photometrics_hand_on_the_draws_that_make_the_same_pixels(synth):
    """defer_photometrics: the views before apply_photo, the recipe's draws in Sample.photo; applying them
    gives the usual sample's pixels exactly (boxes, RoIs and ids are untouched)."""
    deferred = Synthesizer(synth.instances, synth.backgrounds, synth.config, seed=7, defer_photometrics=True)
    changed = 0
    for i in range(6):
        usual, bare = synth.sample(i), deferred.sample(i)
        assert usual.photo is None and bare.photo == [v.photo for v in usual.recipe.views]
        for a, b, draw in zip(usual.views, bare.views, bare.photo):
            assert np.array_equal(apply_photo(b.image, draw), a.image)
            assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.rois, b.rois)
            assert np.array_equal(a.ids, b.ids)
            changed += not np.array_equal(a.image, b.image)
    assert changed >= 12  # of 18 views: the draws were really left out


def test_every_sample_shares_an_instance_across_all_views(synth):
    for i in range(20):
        s = synth.sample(i)
        common = set(s.views[0].ids.tolist())
        for v in s.views[1:]:
            common &= set(v.ids.tolist())
        assert common, f"sample {i} has no instance in all views"
        for v in s.views:
            size = v.image.shape[0]
            assert v.image.shape == (size, size, 3) and v.image.dtype == np.uint8
            assert (v.boxes >= 0).all() and (v.boxes <= size).all()
            assert (v.rois >= 0).all() and (v.rois <= size).all()
            assert (v.boxes[:, 2:] > v.boxes[:, :2]).all()


def test_config_rejects_values_naming_field_and_range():
    with pytest.raises(InputError, match=r"invalid min_visibility=1\.5: must be in 0\.\.1"):
        SynthConfig(min_visibility=1.5)
    with pytest.raises(InputError, match="view_sizes"):
        SynthConfig(view_sizes=(224,))
    with pytest.raises(InputError, match="jitter"):
        SynthConfig(jitter="wobble")
    with pytest.raises(InputError, match=r"unknown setting\(s\): colour \(known: background_area, "):
        SynthConfig.from_dict({"colour": 3})
    assert SynthConfig.from_dict(SynthConfig().to_dict()) == SynthConfig()


def test_blend_mix_follows_its_weights():
    cfg = SynthConfig(blend=("hard", "gaussian", "poisson", "motion"), blend_weights=(3, 1, 0, 1),
                      instances_per_sample=(2, 2))
    modes = [p.blend for i in range(400) for v in sample_recipe(cfg, 27, 7, 0, i).views for p in v.pastes]
    share = {m: modes.count(m) / len(modes) for m in ("hard", "gaussian", "poisson", "motion")}
    assert share["poisson"] == 0
    assert abs(share["hard"] - 0.6) < 0.04 and abs(share["gaussian"] - 0.2) < 0.04
    assert abs(share["motion"] - 0.2) < 0.04
    gaussian = [p.blend_args for i in range(50) for v in sample_recipe(cfg, 27, 7, 0, i).views
                for p in v.pastes if p.blend == "gaussian"]
    assert all(len(a) == 1 and 0.5 <= a[0] <= 2.0 for a in gaussian)


def test_photometric_policies_follow_soco_and_mocov2():
    def views(policy):
        return [sample_recipe(SynthConfig(photometric=policy), 27, 7, 0, i).views for i in range(600)]

    soco = views("soco")
    first, others = [v[0].photo for v in soco], [p.photo for v in soco for p in v[1:]]
    assert all(p.blur_sigma > 0 and not p.solarize for p in first)  # view 0: blur always, never solarize
    assert abs(np.mean([p.solarize for p in others]) - 0.2) < 0.04
    assert abs(np.mean([p.blur_sigma > 0 for p in others]) - 0.1) < 0.03
    assert abs(np.mean([p.brightness != 1.0 for p in first + others]) - 0.8) < 0.03
    assert abs(np.mean([p.grayscale for p in first + others]) - 0.2) < 0.03
    # the 112 px view's blur is scaled from the 224 px range (0.1..2.0) by 1/2
    assert all(0.05 <= v[2].photo.blur_sigma <= 1.0 for v in soco if v[2].photo.blur_sigma)
    moco = [p.photo for v in views("mocov2") for p in v]
    assert not any(p.solarize for p in moco) and abs(np.mean([p.blur_sigma > 0 for p in moco]) - 0.5) < 0.04
    assert all(abs(p.saturation - 1) <= 0.4 for p in moco) and any(abs(p.saturation - 1) > 0.2 for p in moco)
    assert all(v.photo == type(v.photo)() for vs in views("none") for v in vs)
