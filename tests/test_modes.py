"""Blend, jitter and photometric modes are rows of codo_aug.modes (issue 26 point 5): a new mode is one
row (its draw and kernel), which the config accepts, the sampler draws and the renderer applies, with
nothing else touched."""

import numpy as np
import pytest

from codo_aug import InputError, SynthConfig, Synthesizer
from codo_aug.modes import BLENDS, JITTERS, PHOTOMETRICS, Mode
from codo_aug.recipes.photometric import PerView, PhotoPolicy
from codo_aug.render.photometric import apply_photo

MAGENTA = (255, 0, 255)


def _fill(canvas, rgb, alpha, x, y, args):
    """A blend kernel that paints the object's pixels one colour, args[0] its green."""
    h, w = alpha.shape
    region = canvas[max(y, 0):y + h, max(x, 0):x + w]
    inside = alpha[max(-y, 0):max(-y, 0) + region.shape[0], max(-x, 0):max(-x, 0) + region.shape[1]] > 127
    region[inside] = (MAGENTA[0], int(args[0]), MAGENTA[2])


def _synth(**settings) -> Synthesizer:
    config = SynthConfig(view_sizes=(64, 48), photometric="none", **settings)
    return Synthesizer.from_specs("sample", "sample", config, seed=4)


def test_a_new_blend_is_one_row(monkeypatch):
    monkeypatch.setitem(BLENDS, "fill", Mode(lambda rng, cfg: (float(rng.integers(0, 2)),), _fill))
    synth = _synth(blend=("fill",), blend_weights=(1.0,))
    checked = 0
    for i in range(3):
        sample = synth.sample(i)
        pastes = [p for v in sample.recipe.views for p in v.pastes]
        assert {p.blend for p in pastes} == {"fill"} and all(p.blend_args in ((0.0,), (1.0,)) for p in pastes)
        for view, draw in zip(sample.views, sample.recipe.views):
            # the top paste's visible pixels are its fill colour (the others may be covered)
            top = draw.pastes[-1]
            if top.slot in view.ids.tolist():
                shown = view.image[view.masks[view.ids.tolist().index(top.slot)]]
                assert (shown == (255, int(top.blend_args[0]), 255)).all()
                checked += 1
    assert checked >= 4


def test_a_new_jitter_is_one_row(monkeypatch):
    def shift(boxes, jitter, iou_floor):
        return boxes + np.array([2, 3, 2, 3], np.float32)

    monkeypatch.setitem(JITTERS, "shift", Mode(lambda rng, cfg: (1.0, 0.0, 0.0, 0.0), shift))
    synth = _synth(jitter=("shift", "none"), max_truncation=0.0, scale=(0.2, 0.4))
    sample = synth.sample(1)
    moved, kept = sample.views
    assert sample.recipe.views[0].jitter_mode == "shift"
    assert np.array_equal(kept.rois, kept.boxes)
    assert np.array_equal(moved.rois, np.minimum(moved.boxes + [2, 3, 2, 3], 64)) and len(moved.rois)


def test_a_new_photometric_is_one_row(monkeypatch):
    grey = PhotoPolicy((0.0, 0.0, 0.0, 0.0), jitter_p=0.0, gray_p=1.0, blur_p=0.0, solarize_p=0.0)
    monkeypatch.setitem(PHOTOMETRICS, "grey", Mode(PerView((grey,)), apply_photo))
    sample = Synthesizer.from_specs("sample", "sample", SynthConfig(view_sizes=(64, 48), photometric="grey"),
                                    seed=4).sample(0)
    assert all(d.photo.grayscale for d in sample.recipe.views)
    for view in sample.views:
        r, g, b = np.moveaxis(view.image, 2, 0)
        assert (r == g).all() and (g == b).all() and r.std() > 10


def test_config_lists_the_tables_rows(monkeypatch):
    with pytest.raises(InputError,
                       match=r"^invalid blend=\('fill',\): must be made of hard, gaussian, poisson, motion$"):
        SynthConfig(blend=("fill",), blend_weights=(1.0,))
    with pytest.raises(InputError, match=r"must be made of relative, iou, none$"):
        SynthConfig(jitter=("shift",))
    with pytest.raises(InputError, match=r"^invalid photometric='grey': must be one of soco, mocov2, none$"):
        SynthConfig(photometric="grey")
    monkeypatch.setitem(BLENDS, "fill", Mode(lambda rng, cfg: (), _fill))
    with pytest.raises(InputError, match=r"made of hard, gaussian, poisson, motion, fill$"):
        SynthConfig(blend=("smear",), blend_weights=(1.0,))
    assert SynthConfig(blend=("fill",), blend_weights=(1.0,)).blend == ("fill",)
