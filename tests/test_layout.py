"""A recipe is final before painting (issue 26 point 4): the layout (placement, visibility, substitute files)
comes first and records every substitute in the recipe; visibility redraws, `CoDoDataset.recipe` and
`CoDoMultiView.make_params` lay out without painting; a recipe alone paints the same sample again, with
no search for a usable file. Sources are made by the tests: JPEG photos, one truncated."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from codo_aug import CoDoDataset, SynthConfig, Synthesizer, open_source, pipeline
from codo_aug.recipes.recipe import Recipe
from codo_aug.transforms import CoDoMultiView

from .test_golden import detection

CFG = SynthConfig(view_sizes=(64, 48, 32), instances_per_sample=(1, 2), cutout="rect", photometric="soco")


def photos(root, broken: int = 2, n: int = 5) -> str:
    """A folder of `n` 96x72 JPEG photos (colour ramps plus noise) whose `broken`-th is truncated: its
    header passes the scan, its pixels fail to decode."""
    root.mkdir()
    x, y = np.meshgrid(np.linspace(0, 255, 96), np.linspace(0, 255, 72))
    for k in range(n):
        noise = np.random.default_rng(k).normal(0, 8, (72, 96, 3))
        pixels = np.clip(np.dstack([x, y, 255 - x]) * (k + 1) / n + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
        (root / f"p{k}.jpg").write_bytes(buf.getvalue()[:700] if k == broken else buf.getvalue())
    return f"folder:{root}"


def make(spec: str, config: SynthConfig = CFG) -> Synthesizer:
    return Synthesizer(open_source(spec, "instances"), open_source(spec, "backgrounds"), config, seed=1)


def same(a, b) -> bool:
    """Two samples are the same: files, labels, and every view's pixels, boxes, RoIs, ids and masks."""
    return (a.instance_files == b.instance_files and a.background_files == b.background_files
            and a.labels == b.labels and a.recipe == b.recipe
            and all(np.array_equal(getattr(x, f), getattr(y, f)) for x, y in zip(a.views, b.views)
                    for f in ("image", "boxes", "rois", "ids", "masks")))


def test_a_final_recipe_names_its_substitutes_and_paints_alone(tmp_path):
    spec = photos(tmp_path / "photos")
    synth = make(spec)
    broken = [k for k, it in enumerate(synth.instances.items) if it.path == "p2.jpg"]
    samples = [synth.sample(i) for i in range(16)]
    swapped = [s for s in samples if any(d.substitute is not None for d in s.recipe.instances)]
    backdrops = [s for s in samples if any(v.background_substitute is not None for v in s.recipe.views)]
    assert swapped and backdrops, "the broken photo is drawn as an instance and as a background"
    for s in swapped + backdrops:
        for d, path in zip(s.recipe.instances, s.instance_files):
            assert (d.substitute is not None) == (d.source == broken[0])
            assert path == synth.instances.items[d.used].path != "p2.jpg"
        for v, path in zip(s.recipe.views, s.background_files):
            assert (v.background_substitute is not None) == (v.background == broken[0])
            assert path == synth.backgrounds.items[v.background_used].path != "p2.jpg"
        fresh = make(spec)  # another process: it has not met the broken file
        replayed = fresh.render(Recipe.from_dict(json.loads(json.dumps(s.recipe.to_dict()))))
        assert same(replayed, s)
        assert not fresh.render_skips.reasons, "the recipe named the substitute: the broken file is not tried"
    (tmp_path / "photos" / "p2.jpg").write_bytes((tmp_path / "photos" / "p0.jpg").read_bytes())
    mended = make(spec)  # the broken file is whole now: a recipe still shows the files it names
    assert all(same(mended.render(s.recipe), s) for s in swapped + backdrops)


def test_a_recipe_from_before_substitutes_still_paints(tmp_path):
    """A recipe without the substitute fields (shards written before them) searches as before."""
    spec = photos(tmp_path / "photos")
    s = next(s for s in map(make(spec).sample, range(16))
             if any(d.substitute is not None for d in s.recipe.instances))
    old = s.recipe.to_dict()
    for d in old["instances"]:
        del d["substitute"]
    for v in old["views"]:
        del v["background_substitute"]
    fresh = make(spec)
    assert same(fresh.render(Recipe.from_dict(old)), s)
    assert set(fresh.render_skips.counts) == {"corrupt"}


@pytest.fixture
def painted(monkeypatch) -> dict[str, int]:
    """Counts of views laid out and painted, by the pipeline."""
    counts = {"layout": 0, "paint": 0}

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(pipeline, "layout_view", counted("layout", pipeline.layout_view))
    monkeypatch.setattr(pipeline, "paint_view", counted("paint", pipeline.paint_view))
    return counts


def test_visibility_redraws_lay_out_only(painted):
    """A strict visibility floor rejects many draws: each costs a layout, and only the kept one is painted."""
    synth = Synthesizer.from_specs("sample", "sample", SynthConfig(
        view_sizes=(48, 48, 32), instances_per_sample=(3, 4), scale=(0.6, 1.2), min_visibility=0.9), seed=3)
    attempts = []
    for i in range(6):
        before = dict(painted)
        sample = synth.sample(i)
        attempts.append(sample.recipe.attempt)
        assert painted["paint"] - before["paint"] == 3
        assert painted["layout"] - before["layout"] == 3 * (sample.recipe.attempt + 1)
    assert max(attempts) >= 2, attempts


def test_dataset_recipe_and_make_params_paint_nothing(painted):
    ds = CoDoDataset("sample", "sample", seed=2, config=SynthConfig(view_sizes=(64, 48)), length=8)
    recipes = [ds.recipe(i) for i in range(4)]
    t = CoDoMultiView("sample", SynthConfig(view_sizes=(64, 48)), seed=3)
    params = [t.make_params(detection(), i) for i in (4, 11)]
    assert painted["paint"] == 0 and painted["layout"] >= 12
    assert recipes == [ds[i].recipe for i in range(4)]
    for index, recipe in zip((4, 11), params):
        by_index, by_recipe = t(detection(), index=index), t(detection(), recipe=recipe)
        assert all(np.array_equal(a[k], b[k]) for a, b in zip(by_index, by_recipe)
                   for k in ("image", "boxes", "rois", "masks", "ids", "source"))
