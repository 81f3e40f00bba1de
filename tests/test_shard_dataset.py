"""ShardDataset: ranks x workers read every sample exactly once per epoch; epochs reshuffle."""

from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from codo_aug import ShardDataset, SynthConfig, SynthJob, run_synth


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("sd") / "s"
    run_synth(SynthJob(out=out, num_samples=40, shard_size=5, seed=3,
                       config=SynthConfig(view_sizes=(64, 48), photometric="none")))
    return str(out / "*.tar")


def keys_seen(pattern: str, epoch: int, world: int = 2, workers: int = 2, **kw) -> list[list[str]]:
    per_rank = []
    for rank in range(world):
        ds = ShardDataset(pattern, rank=rank, world_size=world, seed=0, **kw)
        ds.set_epoch(epoch)
        loader = DataLoader(ds, batch_size=None, num_workers=workers, collate_fn=lambda r: r)
        per_rank.append([rec.__key__ for rec in loader])
    return per_rank


def test_two_ranks_by_two_workers_see_every_sample_exactly_once(shards):
    for epoch in (0, 1):
        per_rank = keys_seen(shards, epoch, shuffle=16)
        everything = Counter(k for keys in per_rank for k in keys)
        assert sorted(everything) == [f"{i:09d}" for i in range(40)] and set(everything.values()) == {1}
        assert not set(per_rank[0]) & set(per_rank[1])
    a, b = keys_seen(shards, 0, shuffle=16), keys_seen(shards, 1, shuffle=16)
    assert a != b, "a new epoch deals and shuffles anew"
    assert keys_seen(shards, 0, shuffle=16) == a, "the same (seed, epoch) gives the same order"


def test_without_shuffle_one_reader_keeps_the_shard_order(shards):
    (keys,) = keys_seen(shards, 0, world=1, workers=0, shuffle=0)
    assert keys == [f"{i:09d}" for i in range(40)]


def test_fresh_photometrics_change_per_epoch_and_keep_geometry(shards):
    plain = next(iter(ShardDataset(shards, rank=0, world_size=1, shuffle=0)))
    ds = ShardDataset(shards, rank=0, world_size=1, shuffle=0, photometric="soco")
    first = next(iter(ds))
    ds.set_epoch(1)
    second = next(iter(ds))
    assert first.key == second.key == plain.key
    assert not np.array_equal(first.views[0].image, second.views[0].image)
    assert not np.array_equal(first.views[0].image, plain.views[0].image)
    assert np.array_equal(first.views[0].rois, plain.views[0].rois)
    ds.set_epoch(0)
    assert np.array_equal(next(iter(ds)).views[0].image, first.views[0].image)


def test_rank_checks(shards):
    with pytest.raises(ValueError, match="rank 2 must be in 0..world_size-1"):
        ShardDataset(shards, rank=2, world_size=2)


def test_photometric_policy_is_checked(shards):
    with pytest.raises(ValueError, match="invalid photometric='soco2': must be one of soco, mocov2, none or"):
        ShardDataset(shards, rank=0, world_size=1, photometric="soco2")
    stored = next(iter(ShardDataset(shards, rank=0, world_size=1, shuffle=0)))
    as_stored = next(iter(ShardDataset(shards, rank=0, world_size=1, shuffle=0, photometric="none")))
    assert np.array_equal(stored.views[0].image, as_stored.views[0].image)
