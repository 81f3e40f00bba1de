"""FPN level rules (fpn, SoCo's ranges), RoIs per level in metrics.jsonl, and every level fed on real data."""

import json

import pytest
import torch
from torchvision.ops import roi_align

from codo_aug import SynthConfig, Synthesizer
from codo_train import TrainConfig
from codo_train.config import LEVEL_RULES
from codo_train.models.config import ModelConfig
from codo_train.objectives import build_model
from codo_train.objectives.codo import CoDo
from codo_train.upgrade import upgrade
from codo_train.models.levels import RULES, assign_levels, batch_levels, level_counts, level_rows, pool_levels
from codo_train.trainer import train

from .test_real_data import DATA, SCRATCH_SPEC, TUX_SPEC


def squares(*sides: float) -> torch.Tensor:
    return torch.tensor([[0.0, 0.0, s, s] for s in sides])


def test_soco_rule_uses_socos_size_ranges_scaled_to_the_largest_view():
    # sqrt(wh) up to 48 -> P2, up to 96 -> P3, up to 192 -> P4, larger -> P5 (SoCo's aware_range)
    boxes = squares(10, 48, 48.5, 96, 150, 192, 200, 224)
    assert assign_levels(boxes, 224.0, "soco").tolist() == [2, 2, 3, 3, 4, 4, 5, 5]
    # a 200 x 50 box has side 100: P4 under soco, P2 under fpn (floor(4 + log2(100 / 224)) = 2)
    wide = torch.tensor([[0.0, 0.0, 200.0, 50.0]])
    assert assign_levels(wide, 224.0, "soco").tolist() == [4]
    assert assign_levels(wide, 224.0, "fpn").tolist() == [2]
    # a 448-px largest view doubles the bounds: 96 / 192 / 384
    assert assign_levels(squares(48, 96, 100, 200, 384, 400), 448.0, "soco").tolist() == [2, 2, 3, 4, 4, 5]
    with pytest.raises(ValueError, match="level rule must be one of fpn, soco, got 'area'"):
        assign_levels(boxes, 224.0, "area")
    assert tuple(RULES) == LEVEL_RULES  # what TrainConfig accepts is what the model knows


def test_size_mode_pools_at_the_level_the_rule_picks():
    features = {str(i): torch.randn(1, 8, 64 // 2 ** i, 64 // 2 ** i) for i in range(4)}  # a 256-px image
    rois = [torch.tensor([[10.0, 10.0, 110.0, 110.0]])]  # side 100: P4 under soco, P2 under fpn
    def at(level: int) -> torch.Tensor:
        fmap = features[str(level - 2)]
        return roi_align(fmap, rois, 7, spatial_scale=fmap.shape[-1] / 256, sampling_ratio=2, aligned=True)

    assert torch.allclose(pool_levels(features, rois, 256, "size", 224.0, "soco")["size"], at(4))
    assert torch.allclose(pool_levels(features, rois, 256, "size", 224.0, "fpn")["size"], at(2))


def test_level_counts_cover_every_view_and_image_at_the_largest_views_scale():
    views = [torch.zeros(2, 3, 224, 224), torch.zeros(2, 3, 112, 112)]
    rois = [[squares(40, 100), squares(200)], [squares(50), torch.zeros(0, 4)]]
    # sides 40, 100, 200 (224-px view) and 50 (112-px view, judged at 224): P2, P4, P5, P3
    soco = batch_levels(views, rois, "soco")
    assert [lv.tolist() for lv in soco] == [[2, 4, 5], [3]]
    assert level_counts(soco, 4).tolist() == [1, 1, 1, 1]
    assert level_counts(batch_levels(views, rois, "fpn"), 4).tolist() == [3, 1, 0, 0]
    assert level_counts(None, 4).tolist() == [4, 4, 4, 4]  # `all` mode: every level pools every RoI
    assert [r.tolist() for r in level_rows(soco[0])] == [[0], [], [1], [2]]


def test_pooling_uses_the_levels_the_batch_assigned():
    features = {str(k): torch.randn(1, 4, 256 // 2 ** (k + 2), 256 // 2 ** (k + 2)) for k in range(4)}
    rois = [torch.tensor([[10.0, 10.0, 110.0, 110.0]])]
    by_rule = pool_levels(features, rois, 256, "size", 224.0, "soco")["size"]  # side 100: P4
    given = level_rows(torch.tensor([4]))
    assert torch.equal(pool_levels(features, rois, 256, "size", 224.0, "fpn", given)["size"],
                       by_rule)  # the batch's levels win over the rule


def test_the_model_gets_the_runs_level_rule_and_old_runs_keep_fpn():
    cfg = TrainConfig(out="run", shards="s/*.tar", arch="resnet18")
    assert cfg.level_rule == "soco"
    model = build_model(CoDo.model_config(cfg))
    assert model.online.level_rule == model.target.level_rule == "soco"
    old = {"config": {"arch": "resnet18"}, "model": {}}  # a checkpoint saved before level_rule
    assert build_model(ModelConfig.from_dict(upgrade(old)["model_config"])).online.level_rule == "fpn"


@pytest.mark.slow
def test_metrics_count_the_rois_of_each_level_every_step(sample_shards, tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), shards=str(sample_shards), steps=1, arch="resnet18",
                      batch_size=2, accumulate=2)
    train(cfg)
    (step,) = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sorted(step["rois_per_level"]) == ["p2", "p3", "p4", "p5"]
    assert sum(step["rois_per_level"].values()) >= 2 * 2 * 3  # both micro-batches: >= 1 RoI a view


@pytest.mark.skipif(not (DATA / ".complete").is_file(), reason=f"real test data not in {DATA}")
def test_default_settings_feed_every_level_at_least_a_tenth_of_the_rois():
    """Default SynthConfig (scale, RoI jitter) and TrainConfig level rule, stamps on scene photos: the
    RoIs of every view of 400 samples, P2..P5 each >= 10 % (measured about 13 / 36 / 37 / 14 %)."""
    synth = Synthesizer.from_specs(TUX_SPEC, SCRATCH_SPEC, SynthConfig(), seed=0)
    cfg = TrainConfig(out="run", instances=TUX_SPEC, backgrounds=SCRATCH_SPEC)
    counts = dict.fromkeys(["p2", "p3", "p4", "p5"], 0)
    for i in range(400):
        views = synth.sample(i).views
        shapes = [torch.empty(0, 3, *v.image.shape[:2]) for v in views]  # only their sizes count
        rois = [[torch.from_numpy(v.rois)] for v in views]
        per_level = level_counts(batch_levels(shapes, rois, cfg.level_rule), 0).tolist()
        for level, n in zip(counts, per_level):
            counts[level] += n
    shares = {k: n / sum(counts.values()) for k, n in counts.items()}
    assert min(shares.values()) >= 0.10, shares


@pytest.mark.slow
def test_a_training_step_assigns_levels_once_per_batch(sample_shards, tmp_path, monkeypatch):
    """The trainer's batch_levels is the only caller of assign_levels: pooling (online and target) and the
    per-level figures reuse its levels, one call per view of each micro-batch."""
    import codo_train.models.levels as levels_mod

    calls = []
    real = levels_mod.assign_levels
    monkeypatch.setattr(levels_mod, "assign_levels", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    cfg = TrainConfig(out=str(tmp_path / "run"), shards=str(sample_shards), steps=1, arch="resnet18",
                      batch_size=2, accumulate=2)
    train(cfg)
    assert len(calls) == 2 * 3  # 2 micro-batches x 3 views
