"""Settings: TOML files and --set overrides, type-checked, with one-line errors naming field and range."""

import json

import pytest

from codo_aug import InputError, SynthConfig
from codo_aug.settings import parse_value, with_overrides

from .helpers import cli


def test_parse_value_reads_toml_literals_and_bare_strings():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("[0.2, 0.8]") == [0.2, 0.8]
    assert parse_value("iou") == "iou" and parse_value('"iou"') == "iou"


def test_from_dict_coerces_and_checks_types():
    cfg = SynthConfig.from_dict({"scale": [0.2, 0.5], "jitter": "iou", "view_sizes": [160, 96], "flip_p": 0})
    assert cfg.scale == (0.2, 0.5) and cfg.jitter == ("iou",) and cfg.view_sizes == (160, 96)
    assert isinstance(cfg.flip_p, float)
    for values, message in [
        ({"scale": [0.1, "a"]}, r"invalid scale=\[0.1, 'a'\]: must be a list of 2 numbers"),
        ({"view_sizes": 3}, "invalid view_sizes=3: must be a list of integers"),
        ({"jpeg_quality": "high"}, "invalid jpeg_quality='high': must be an integer"),
        ({"jpeg_quality": True}, "must be an integer"),
        ({"jitter": ["relative", "iou"]}, r"one mode, or one per view \(3\)"),
        ({"blend": ["hard"], "blend_weights": [1, 2]}, "one weight >= 0 per blend mode"),
        ({"max_truncation": 0.9}, r"invalid max_truncation=0.9: must be in 0..0.5"),
    ]:
        with pytest.raises(InputError, match=message):
            SynthConfig.from_dict(values)


def test_with_overrides_keeps_the_rest():
    cfg = with_overrides(SynthConfig(photometric="mocov2"), {"instances": [2, 3]})
    assert cfg.instances == (2, 3) and cfg.photometric == "mocov2"


def test_cli_reads_a_toml_file_and_set_wins(tmp_path):
    conf = tmp_path / "codo.toml"
    conf.write_text('[synth]\nview_sizes = [96, 64]\nphotometric = "mocov2"\njitter = ["iou", "none"]\n')
    out = tmp_path / "o"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "2", "--config", str(conf),
        "--set", "photometric=none", "--set", "max_truncation=0.2", check=True)
    config = json.loads((out / "_info.json").read_text())["config"]
    assert config["view_sizes"] == [96, 64] and config["jitter"] == ["iou", "none"]
    assert config["photometric"] == "none" and config["max_truncation"] == 0.2


@pytest.mark.parametrize("args, message", [
    (["--set", "min_visibility=2"], "invalid min_visibility=2.0: must be in 0..1"),
    (["--set", "colour=1"], "unknown setting(s): colour (known: "),
    (["--set", "flip_p"], "--set expects key=value, got 'flip_p'"),
    (["--config", "/no/such.toml"], "--config /no/such.toml: no such file"),
])
def test_cli_settings_errors_are_one_line_with_exit_2(tmp_path, args, message):
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--num-samples", "1", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"codo-aug: error: {message}")


def test_cli_rejects_broken_toml(tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text("min_visibility = \n")
    proc = cli("codo-aug", "synth", "--out", str(tmp_path / "o"), "--config", str(conf))
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr
