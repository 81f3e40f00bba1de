"""CoDoDataset: the same sample in the main process and in DataLoader workers; recipes replay."""

import json

import numpy as np
import pytest
from torch.utils.data import DataLoader

from codo_aug import CoDoDataset, SynthConfig
from codo_aug.dataset import collate
from codo_aug.recipes.recipe import Recipe


@pytest.fixture(scope="module")
def ds() -> CoDoDataset:
    return CoDoDataset(instances="sample", backgrounds="sample", seed=11, length=8)


def same(a, b) -> bool:
    return all(
        np.array_equal(x.image, y.image) and np.array_equal(x.boxes, y.boxes)
        and np.array_equal(x.rois, y.rois)
        and np.array_equal(x.ids, y.ids) and np.array_equal(x.masks, y.masks)
        for x, y in zip(a.views, b.views)
    )


def test_sample_fields(ds):
    s = ds[3]
    assert [v.image.shape for v in s.views] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]
    for v in s.views:
        assert v.image.dtype == np.uint8 and v.boxes.dtype == np.float32 and v.rois.dtype == np.float32
        assert v.ids.dtype == np.int64 and v.boxes.shape == v.rois.shape == (len(v.ids), 4)
        assert v.masks.shape == (len(v.ids),) + v.image.shape[:2]
    with pytest.raises(IndexError):
        ds[8]


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_give_the_main_process_samples(ds, workers):
    loader = DataLoader(ds, batch_size=None, num_workers=workers, shuffle=False)
    for i, sample in enumerate(loader):
        assert same(sample, ds[i])


def test_recipe_json_round_trip_renders_the_same_sample(ds):
    recipe = ds.recipe(5)
    again = ds.render(Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))))
    assert same(again, ds[5])


def test_a_new_dataset_with_the_same_arguments_gives_the_same_samples(ds):
    twin = CoDoDataset(instances="sample", backgrounds="sample", seed=11, length=8)
    other = CoDoDataset(instances="sample", backgrounds="sample", seed=12, length=8)
    assert same(twin[2], ds[2]) and not same(other[2], ds[2])


def test_collate_batches_views_for_training(ds):
    batch = collate([ds[0], ds[1]])
    assert [tuple(v.shape) for v in batch.views] == [(2, 3, 224, 224), (2, 3, 224, 224), (2, 3, 112, 112)]
    for j in range(3):
        assert [len(r) for r in batch.rois[j]] == [len(ds[0].views[j].ids), len(ds[1].views[j].ids)]


def test_collate_drops_samples_passed_over(ds):
    batch = collate([None, ds[0], None])
    assert [tuple(v.shape) for v in batch.views] == [(1, 3, 224, 224), (1, 3, 224, 224), (1, 3, 112, 112)]
    assert batch.keys == ["0"] and collate([None]) is None


def test_collate_refuses_samples_whose_photometrics_are_still_to_apply():
    """A deferred sample's views lack their colour and blur: a plain collate would train on them silently."""
    deferred = CoDoDataset("sample", "sample", seed=11, length=2, defer_photometrics=True)
    with pytest.raises(ValueError, match="sample 0 carries photometric draws still to apply"):
        collate([deferred[0], deferred[1]])
    batch = collate([deferred[0]], deferred=True)  # the caller applies them (codo_train's collate does)
    assert batch.keys == ["0"] and len(deferred[0].photo) == 3


def test_config_is_kept(ds):
    small = CoDoDataset(config=SynthConfig(view_sizes=(64, 32)), length=1)
    assert small[0].views[1].image.shape == (32, 32, 3)
