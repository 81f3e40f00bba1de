"""No setting ignored in silence (issue 25, point 2): one that cannot take effect in the run it is given to
is refused in one line when typed (an option or --set), warned about when a --config file holds it."""

import json
import logging
from pathlib import Path

import pytest

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError
from codo_cli.config_files import Given, given_settings, read_settings
from codo_cli.inert import SYNTH, TRAIN, check_shard_run, check_synth, settle, unread_by_prepare
from codo_train.config import TrainConfig
from codo_train.data import loader_options

from .test_cli_errors import assert_one_line
from .helpers import cli

CODO_TOML = Path(__file__).resolve().parents[1] / "examples" / "configs" / "codo.toml"


def idle(rules, subject) -> set[str]:
    return {name for name, acts in rules.items() if not acts.test(subject)}


@pytest.mark.parametrize("settings, expected", [
    ({}, {"queue_size", "temperature", "level_weights", "prefetch"}),  # the defaults: BYOL, levels "size"
    ({"loss": "infonce", "levels": "all", "workers": 2}, {"level_rule"}),
    ({"objective": "image", "workers": 1},
     {"queue_size", "temperature", "image_weight", "levels", "level_rule", "level_weights"}),
    ({"objective": "supervised", "loss": "infonce", "levels": "all", "instances": "sample",
      "backgrounds": "sample", "shards": ""},
     {"loss", "all_pairs", "momentum_base", "queue_size", "temperature", "image_weight", "level_rule",
      "max_bad_fraction", "verify_shards", "prefetch"}),
])
def test_which_train_settings_a_run_leaves_without_effect(settings, expected):
    cfg = TrainConfig(**{"out": "o", "shards": "s", **settings})
    assert idle(TRAIN, cfg) == expected


def test_synthesis_settings_that_other_settings_switch_off():
    assert idle(SYNTH, SynthConfig()) == {"iou_floor", "motion_length"}
    cfg = SynthConfig(jitter=("iou", "none", "none"), blend=("motion",), blend_weights=(1.0,),
                      view_crop="off")
    assert idle(SYNTH, cfg) == {"jitter_ratio", "feather_sigma", "view_crop_area", "view_crop_ratio"}
    no_jitter = {"iou_floor", "jitter_ratio", "jitter_p", "motion_length"}
    assert idle(SYNTH, SynthConfig(jitter="none")) == no_jitter
    never_gaussian = SynthConfig(blend=("hard", "gaussian", "motion"), blend_weights=(1.0, 0.0, 1.0))
    assert idle(SYNTH, never_gaussian) == {"iou_floor", "feather_sigma"}


def test_what_the_rules_call_idle_is_idle_where_it_is_used():
    """Spot checks in the code the rules describe: a loader without workers takes no prefetch factor."""
    assert loader_options(0, prefetch=8) == loader_options(0, prefetch=2) == {"num_workers": 0,
                                                                              "pin_memory": False}
    assert loader_options(2, prefetch=8)["prefetch_factor"] == 8


def test_prepare_reads_sizes_only_without_max_side():
    def reads(role, max_side):
        return set(SynthConfig.__dataclass_fields__) - set(unread_by_prepare(role, max_side))

    assert reads("instances", None) == {"min_instance_side", "cutout", "view_sizes", "scale", "view_crop",
                                        "view_crop_area", "view_crop_ratio", "rect_area", "rect_ratio"}
    assert reads("instances", 64) == {"min_instance_side", "cutout"}
    assert reads("backgrounds", None) == {"min_background_side", "view_sizes", "background_area"}
    assert "without --max-side" in unread_by_prepare("backgrounds", 64)["background_area"].what


def test_a_typed_setting_without_effect_is_refused_and_a_file_one_warned_about(caplog):
    cfg = TrainConfig(out="o", shards="s")
    refused = r'^queue_size=4096 has no effect in this run: it acts only with loss "infonce" .*; drop it$'
    with pytest.raises(InputError, match=refused):
        settle(TRAIN, cfg, Given(None, {}, {"queue_size": 4096}))
    with caplog.at_level(logging.WARNING):
        settle(TRAIN, cfg, Given(Path("r.toml"), {"queue_size": 4096, "temperature": 0.5, "steps": 3}, {}))
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "--config r.toml: queue_size, temperature have no effect in this run"]
    caplog.clear()
    settle(TRAIN, cfg, Given(Path("r.toml"), {"steps": 3, "levels": "size"}, {"lr": 0.5}))  # all act
    assert not caplog.records


def test_a_synth_file_shared_with_synth_is_not_warned_about_where_a_command_does_not_read_it(caplog):
    file = Given(CODO_TOML, read_settings(CODO_TOML, None, "synth"), {})
    with caplog.at_level(logging.WARNING):
        check_synth(SynthConfig.from_dict(file.file), file, unread_by_prepare("backgrounds", None))
    assert not caplog.records
    with pytest.raises(InputError, match=r'^photometric="none" has no effect in this run: it acts only with '
                                         r"codo-aug synth \(prepare --role backgrounds reads min_background"):
        check_synth(SynthConfig(), Given(None, {}, {"photometric": "none"}),
                    unread_by_prepare("backgrounds", None))


def test_given_settings_tell_the_file_from_the_command_line(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text("[train]\nsteps = 3\nlr = 0.5\nseed = 1\n")
    merged = {"steps": 3, "lr": 0.25, "seed": 1, "arch": "resnet18", "workers": 2}  # after options
    given = given_settings(conf, ["seed=1"], "train", merged=merged)
    assert given.file == {"steps": 3, "lr": 0.5, "seed": 1}
    assert given.typed == {"seed": 1, "lr": 0.25, "arch": "resnet18", "workers": 2}  # an option at the
    assert given.values == merged  # file's own value (steps 3) counts as the file's


def write_info(folder: Path, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_info.json").write_text(json.dumps({"config": config, "shards": []}))


def test_a_synth_table_must_match_what_the_shards_were_rendered_with(tmp_path, caplog):
    shards = tmp_path / "shards"
    write_info(shards, SynthConfig().to_dict())
    codo = Given(CODO_TOML, read_settings(CODO_TOML, None, "synth"), {})
    for pattern in (shards, f"{shards}/*.tar", f"{shards}/codo-{{000000..000002}}.tar"):
        with caplog.at_level(logging.WARNING):  # the README's workflow: one file for synth and run
            check_shard_run(TrainConfig(out="o", shards=str(pattern)), codo)
    assert not caplog.records
    other = Given(tmp_path / "c.toml", {"scale": [0.2, 0.5], "flip_p": 0.5}, {})
    with pytest.raises(InputError) as err:
        check_shard_run(TrainConfig(out="o", shards=str(shards)), other)
    assert str(err.value).startswith(f"--config {tmp_path / 'c.toml'}: [synth] scale=[0.2, 0.5] differs from "
                                     f"the shards' scale=[0.3, 1.6] ({shards / '_info.json'}): the shards "
                                     "are rendered already")
    check_shard_run(TrainConfig(out="o", shards=str(tmp_path / "bare")), other)  # no _info.json to compare
    assert "[synth] scale, flip_p not applied: the shards are rendered already" in caplog.text


@pytest.mark.parametrize("args, start", [
    (("codo-train", "run", "--shards", "s", "--set", "synth.scale=[0.2,0.5]"),
     "codo-train: error: synth.scale=[0.2, 0.5] cannot take effect: the shards are rendered already "
     "(synthesis settings act in codo-aug synth, or online with --instances/--backgrounds; for shards, "
     "--photometric draws fresh photometrics each epoch); drop it"),
    (("codo-train", "run", "--instances", "sample", "--backgrounds", "sample", "--photometric", "mocov2"),
     "codo-train: error: photometric='mocov2' draws fresh photometrics per epoch for shards; with online "
     "synthesis they are a synthesis setting: pass --set synth.photometric=mocov2 (or [synth] photometric "
     "in the config)"),
    (("codo-train", "run", "--shards", "s", "--prefetch", "4"),
     "codo-train: error: prefetch=4 has no effect in this run: it acts only with workers >= 1"),
    (("codo-train", "run", "--instances", "sample", "--backgrounds", "sample",
      "--set", "synth.jpeg_quality=80"),
     "codo-train: error: synth.jpeg_quality=80 has no effect in this run: it acts only with codo-aug synth"),
    (("codo-aug", "synth", "--format", "coco", "--image-format", "png"),
     'codo-aug: error: image_format="png" has no effect in this run: it acts only with --format webdataset'),
    (("codo-aug", "prepare", "sample", "--role", "instances", "--max-side", "64",
      "--set", "scale=[0.2, 1.0]"),
     "codo-aug: error: scale=[0.2, 1.0] has no effect in this run: it acts only with codo-aug synth, or "
     "prepare without --max-side"),
    (("codo-aug", "preview", "--set", "jpeg_quality=80"),
     "codo-aug: error: jpeg_quality=80 has no effect in this run: it acts only with codo-aug synth (the "
     "preview is a PNG)"),
])
def test_each_command_refuses_a_typed_setting_it_would_ignore(tmp_path, args, start):
    out = str(tmp_path / ("grid.png" if "preview" in args else "o"))
    assert_one_line(cli(*args, "--out", out), 2, start)
    assert not (tmp_path / "o").exists()
