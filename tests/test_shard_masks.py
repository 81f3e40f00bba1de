"""Shards hold each instance's visible part per view (COCO RLE in the JSON), read back exactly."""

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from codo_aug import CoDoDataset, ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.geometry.boxes import mask_to_box
from codo_aug.shards.format import decode_record
from codo_aug.shards.reader import expand_shards, iter_members

CONFIG = SynthConfig(view_sizes=(64, 48), photometric="none")


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("masks") / "s"
    run_synth(SynthJob(out=out, num_samples=6, shard_size=3, seed=2, config=CONFIG))
    return str(out)


def test_masks_read_back_equal_the_rendered_ones(shards):
    dataset = CoDoDataset("sample", "sample", seed=2, config=CONFIG)
    records = list(ShardDataset(shards, rank=0, world_size=1, shuffle=0))
    assert [r.key for r in records] == [f"{i:09d}" for i in range(6)]
    for rec in records:
        for got, view in zip(rec.views, dataset[rec.meta["index"]].views):
            assert got.masks.dtype == bool and got.masks.shape == (len(view.ids), *view.image.shape[:2])
            assert np.array_equal(got.masks, view.masks)
            assert [mask_to_box(m).tolist() for m in got.masks] == got.boxes.tolist()


def test_the_json_holds_pycocotools_rle_aligned_with_ids(shards):
    _, members = next(iter_members(expand_shards(shards)[0]))
    view = json.loads(members["json"])["views"][1]
    assert len(view["masks"]) == len(view["ids"]) >= 1
    rle = view["masks"][0]
    assert rle["size"] == [48, 48] and isinstance(rle["counts"], str)
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
    assert decoded.shape == (48, 48)
    assert decoded.sum() == mask_utils.area({**rle, "counts": rle["counts"].encode()}) > 0


def test_fresh_photometrics_keep_the_masks_and_older_shards_have_none(shards):
    plain = next(iter(ShardDataset(shards, rank=0, world_size=1, shuffle=0)))
    jittered = next(iter(ShardDataset(shards, rank=0, world_size=1, shuffle=0, photometric="soco")))
    assert all(np.array_equal(a.masks, b.masks) for a, b in zip(plain.views, jittered.views))
    key, members = next(iter_members(expand_shards(shards)[0]))
    meta = json.loads(members["json"])
    for view in meta["views"]:
        del view["masks"]
    older = decode_record(key, {**members, "json": json.dumps(meta).encode()})
    assert [v.masks for v in older.views] == [None, None]
    assert np.array_equal(older.views[0].rois, plain.views[0].rois)
