"""Which instances a sample takes: distinct ones, repeats only when allowed, and class-balanced draws."""

import json
from collections import Counter

import numpy as np
import pytest

from codo_aug import SynthConfig, Synthesizer, open_source
from codo_aug.recipes.recipe import Recipe
from codo_aug.recipes.sampler import class_members, sample_recipe
from codo_aug.shards.format import encode_sample
from codo_aug.shards.stats import collect_stats, format_stats
from codo_aug.io.storage import Folder
from codo_aug.shards.writer import write_shard

#: 1 instance of class "a", 99 of class "b".
SKEWED = class_members(["b"] * 50 + ["a"] + ["b"] * 49)


def test_class_members_lists_each_class_in_name_order():
    members = class_members(["dog", "cat", "dog", "ant", "cat"])
    assert [m.tolist() for m in members] == [[3], [1, 4], [0, 2]]
    assert [m.tolist() for m in SKEWED] == [[50], list(range(50)) + list(range(51, 100))]


def test_a_sample_takes_distinct_instances_and_fewer_when_the_pool_is_small():
    cfg = SynthConfig(instances_per_sample=(3, 5))
    for index in range(50):
        sources = [d.source for d in sample_recipe(cfg, 4, 7, seed=0, index=index).instances]
        assert len(set(sources)) == len(sources) and 3 <= len(sources) <= 4
        assert sorted(d.source for d in sample_recipe(cfg, 2, 7, seed=0, index=index).instances) == [0, 1]


def test_repeats_copy_a_drawn_instance_only_past_the_pool():
    cfg = SynthConfig(instances_per_sample=(5, 5), repeat_instances=True)
    for index in range(20):
        drawn = sample_recipe(cfg, 3, 7, seed=0, index=index).instances
        assert len(drawn) == 5 and sorted(d.source for d in drawn[:3]) == [0, 1, 2]
        assert all(d in drawn[:3] for d in drawn[3:])  # same source and rect: the same instance
        assert len({d.source for d in sample_recipe(cfg, 9, 7, seed=0, index=index).instances}) == 5


def class_a_share(cfg: SynthConfig, n: int = 2000) -> float:
    picks = [sample_recipe(cfg, 100, 7, 0, i, classes=SKEWED).instances[0].source for i in range(n)]
    return picks.count(50) / n


def test_balance_classes_draws_a_class_uniformly_then_an_instance():
    one = dict(instances_per_sample=(1, 1))
    assert abs(class_a_share(SynthConfig(**one, balance_classes=True)) - 0.5) < 0.05  # sd 0.011
    assert class_a_share(SynthConfig(**one)) < 0.03  # 1 in 100 without balancing


def test_balanced_draws_stay_distinct_when_classes_run_out():
    cfg = SynthConfig(instances_per_sample=(4, 4), balance_classes=True)
    classes = class_members(["a", "b", "b", "b"])
    for index in range(20):
        drawn = sample_recipe(cfg, 4, 7, 0, index, classes=classes).instances
        assert sorted(d.source for d in drawn) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="balance_classes needs the instance classes"):
        sample_recipe(cfg, 4, 7, 0, 0)


@pytest.fixture(scope="module")
def balanced() -> Synthesizer:
    # scale pinned: the stats test below counts the classes these draws give (7)
    cfg = SynthConfig(view_sizes=(64, 32), instances_per_sample=(2, 2), balance_classes=True,
                      photometric="none", scale=(0.35, 0.8))
    return Synthesizer(open_source("sample", "instances"), open_source("sample", "backgrounds"), cfg, seed=4)


def test_balanced_samples_replay_from_their_json_recipe(balanced):
    sample = balanced.sample(3)
    again = balanced.render(Recipe.from_dict(json.loads(json.dumps(sample.recipe.to_dict()))))
    assert all(np.array_equal(a.image, b.image) and np.array_equal(a.ids, b.ids)
               for a, b in zip(sample.views, again.views))


def test_stats_count_each_class_and_show_their_spread(balanced, tmp_path):
    samples = [balanced.sample(i) for i in range(6)]
    write_shard(Folder(tmp_path), "codo-000000.tar", (encode_sample(s, seed=4) for s in samples))
    stats = collect_stats([str(tmp_path / "codo-000000.tar")])
    want = Counter(label for s in samples for label in s.labels)
    assert stats["source_classes"] == dict(want) and sum(want.values()) == 12
    assert list(stats["source_classes"].values()) == sorted(want.values(), reverse=True)
    text = format_stats(stats, top=4)
    low, high = min(want.values()), max(want.values())
    assert f"source classes ({len(want)} classes, {low}..{high} each; top 4)" in text
    rarest, count = list(stats["source_classes"].items())[-1]
    bar = "#" * round(40 * count / high)  # bars scale to the most common class
    assert len(want) == 7
    assert text.endswith(f"least common source classes (last 1)\n  {rarest:>24} {count:8d} {bar}")
