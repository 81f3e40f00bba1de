"""examples/configs/*.toml load as the CLIs load them, and say what their comments claim."""

from pathlib import Path

import pytest

from codo_aug import SynthConfig
from codo_cli.config_files import read_settings
from codo_train.config import TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"
#: What TrainConfig needs to validate, and a file cannot know: the run's folder and data.
RUN = {"out": "runs/example", "shards": "shards/*.tar"}


def load(name: str) -> tuple[SynthConfig, TrainConfig]:
    path = CONFIGS / name
    synth = SynthConfig.from_dict(read_settings(path, None, "synth"))
    return synth, TrainConfig.from_dict({**read_settings(path, None, "train"), **RUN})


def test_every_example_config_is_tested():
    assert sorted(p.name for p in CONFIGS.glob("*.toml")) == ["codo.toml", "insloc.toml", "soco.toml"]


def test_codo_toml_spells_out_the_defaults():
    assert load("codo.toml") == (SynthConfig(), TrainConfig(**RUN))


@pytest.mark.parametrize("name, synth, train", [
    ("soco.toml", dict(instances_per_sample=(1, 4)), dict(lr_scaling="linear", momentum_base=0.99)),
    ("insloc.toml",
     dict(view_sizes=(224, 224), instances_per_sample=(1, 1), scale=(0.5, 1.0), cutout="rect",
          blend=("hard",), blend_weights=(1.0,), jitter=("iou",), photometric="mocov2"),
     dict(levels="all", loss="infonce", momentum_base=0.999, optimizer="sgd", lr=0.03, weight_decay=1e-4)),
])
def test_recipes_override_the_defaults(name, synth, train):
    assert load(name) == (SynthConfig(**synth), TrainConfig(**train, **RUN))
