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
    cfg = with_overrides(SynthConfig(photometric="mocov2"), {"instances_per_sample": [2, 3]})
    assert cfg.instances_per_sample == (2, 3) and cfg.photometric == "mocov2"


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


def test_the_old_name_of_instances_per_sample_still_loads():
    """`instances` (a count range) was renamed `instances_per_sample`: files, --set and stored configs that
    use the old name load; both names at once are refused."""
    assert SynthConfig.from_dict({"instances": [1, 3]}) == SynthConfig(instances_per_sample=(1, 3))
    with pytest.raises(InputError, match="instances and instances_per_sample are one setting"):
        SynthConfig.from_dict({"instances": [1, 3], "instances_per_sample": [1, 3]})
    from codo_train.checkpoint import _with_defaults  # an old run folder's synth table

    assert _with_defaults({"synth": {"instances": [2, 4]}})["synth"] == \
        SynthConfig(instances_per_sample=(2, 4)).to_dict()


def test_an_old_config_file_and_an_old_synth_job_still_work(tmp_path):
    conf, out = tmp_path / "old.toml", tmp_path / "o"
    conf.write_text("[synth]\nview_sizes = [64, 48]\ninstances = [3, 3]\n")
    args = ["synth", "--out", str(out), "--num-samples", "4", "--shard-size", "2", "--config", str(conf)]
    cli("codo-aug", *args, check=True)
    info = json.loads((out / "_info.json").read_text())
    assert info["config"]["instances_per_sample"] == [3, 3] and "instances" not in info["config"]
    assert all(len(s["labels"]) == 3 for s in _metas(out))
    shard = (out / "codo-000001.tar").read_bytes()
    # as a job started before the rename left it: its job file holds the old name, one shard to write
    job = json.loads((out / "_job.json").read_text())
    job["config"]["instances"] = job["config"].pop("instances_per_sample")
    (out / "_job.json").write_text(json.dumps(job))
    for name in ("codo-000001.tar", "_info.json"):
        (out / name).unlink()
    old_sets = ["--set", "view_sizes=[64, 48]", "--set", "instances=[3, 3]"]
    again = cli("codo-aug", *args[:-2], *old_sets, check=True)
    assert "(1 already there)" in again.stderr and (out / "codo-000001.tar").read_bytes() == shard
    both = cli("codo-aug", *args, "--set", "instances_per_sample=[1, 1]")  # --set wins over the file's name
    assert both.returncode == 2 and "differs in: config" in both.stderr, both.stderr


def _metas(out) -> list[dict]:
    """Each sample's JSON record in the shards of `out`."""
    import tarfile

    metas = []
    for shard in sorted(out.glob("codo-*.tar")):
        with tarfile.open(shard) as tar:
            metas += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    return metas
