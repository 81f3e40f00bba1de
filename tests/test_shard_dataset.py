"""ShardDataset: ranks x workers read every sample exactly once per epoch; epochs reshuffle."""

from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from codo_aug import ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.shards.dataset import equal_pieces
from codo_aug.shards.reader import read_piece, shard_sizes


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


def test_equal_pieces_cut_the_epoch_into_equal_runs_at_shard_borders():
    # 120 samples over 2 ranks: 60 each, shard 1 shared at its 10th record
    assert equal_pieces([50, 50, 20], [0, 1, 2], 0, 2) == [(0, 0, 50), (1, 0, 10)]
    assert equal_pieces([50, 50, 20], [0, 1, 2], 1, 2) == [(1, 10, 50), (2, 0, 20)]
    # another epoch's order; 121 samples: 40 each, the last one waits for another order
    assert equal_pieces([50, 50, 21], [2, 0, 1], 2, 3) == [(1, 9, 49)]
    assert equal_pieces([50, 50, 21], [2, 0, 1], 1, 3) == [(0, 19, 50), (1, 0, 9)]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """41 samples in 3 shards (16, 16, 9)."""
    out = tmp_path_factory.mktemp("uneven") / "s"
    run_synth(SynthJob(out=out, num_samples=41, shard_size=16, seed=4,
                       config=SynthConfig(view_sizes=(48, 32), photometric="none")))
    return out


def test_three_shards_over_two_ranks_give_equal_epochs_each_sample_at_most_once(uneven, tmp_path):
    everything = [f"{i:09d}" for i in range(41)]
    for epoch in (0, 1):
        per_rank = keys_seen(str(uneven / "*.tar"), epoch, shuffle=8)
        assert [len(keys) for keys in per_rank] == [20, 20]  # 41 // 2 each; one waits for another order
        seen = Counter(k for keys in per_rank for k in keys)
        assert set(seen.values()) == {1} and set(seen) < set(everything)
    assert keys_seen(str(uneven / "*.tar"), 1, shuffle=8) == per_rank  # a function of (seed, epoch)
    whole = keys_seen(str(uneven / "*.tar"), 0, shuffle=8, split="shards")  # whole shards: uneven
    assert sorted(len(keys) for keys in whole) in ([9, 32], [16, 25])
    assert sorted(k for keys in whole for k in keys) == everything
    bare = tmp_path / "bare"  # no _info.json: the counts come from reading the shards
    bare.mkdir()
    for tar in uneven.glob("*.tar"):
        (bare / tar.name).write_bytes(tar.read_bytes())
    assert keys_seen(str(bare / "*.tar"), 1, shuffle=8) == per_rank


def test_a_piece_reads_its_records_only(uneven):
    shard = str(sorted(uneven.glob("*.tar"))[0])
    assert [key for _, key, _ in read_piece(shard, 3, 6)] == ["000000003", "000000004", "000000005"]
    assert len(list(read_piece(shard, 10, None))) == 6 and not list(read_piece(shard, 4, 4))
    assert shard_sizes(sorted(str(p) for p in uneven.glob("*.tar"))) == [16, 16, 9]


def test_an_unknown_split_is_refused(uneven):
    with pytest.raises(ValueError, match="invalid split='halves'"):
        ShardDataset(str(uneven), rank=0, world_size=2, split="halves")
