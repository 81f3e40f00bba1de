"""Recipes are pure functions of (config, seed, index); rendering a recipe is deterministic."""

import json

import numpy as np
import pytest

from codo_aug import InputError, SynthConfig, Synthesizer, open_source
from codo_aug.params.recipe import Recipe
from codo_aug.params.sampler import sample_recipe


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer(open_source("sample", "instances"), open_source("sample", "backgrounds"), SynthConfig(), seed=7)


def test_recipe_depends_only_on_seed_and_index():
    cfg = SynthConfig()
    a = sample_recipe(cfg, 27, 7, seed=3, index=11)
    assert sample_recipe(cfg, 27, 7, seed=3, index=11) == a
    assert sample_recipe(cfg, 27, 7, seed=3, index=12) != a
    assert sample_recipe(cfg, 27, 7, seed=4, index=11) != a
    assert sample_recipe(cfg, 27, 7, seed=3, index=11, attempt=1) != a


def test_recipe_shape_follows_config():
    cfg = SynthConfig(view_sizes=(160, 96), instances=(3, 3), jitter="none")
    r = sample_recipe(cfg, 27, 7, seed=0, index=0)
    assert [v.size for v in r.views] == [160, 96]
    assert len(r.instances) == 3
    assert len({v.background for v in r.views}) == 2  # each view its own background
    for v in r.views:
        assert sorted(p.slot for p in v.pastes) == [0, 1, 2]
        assert all(j == (0.0, 0.0, 0.0, 0.0) for j in v.jitter)
        assert all(0.35 <= p.scale <= 0.8 for p in v.pastes)


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
