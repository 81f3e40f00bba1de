"""Training objectives, one file each (codo, image, supervised), by name (a run's `objective`): a subclass of
base.Objective, registered in OBJECTIVES. Adding one is a file and a line:

    OBJECTIVES.register("mine", Mine)

after which `objective = "mine"` trains it, and its checkpoints export and probe like any other."""

from typing import TYPE_CHECKING

from codo_aug.errors import InputError

from ..registry import Registry

if TYPE_CHECKING:  # torch loads with the objectives themselves, not with the names
    from torch import nn

    from ..models.config import ModelConfig
    from .base import Objective

#: name -> the Objective subclass (built-ins imported on first use: listing the names loads no torch).
OBJECTIVES: Registry["type[Objective]"] = Registry("objective", {
    "codo": "codo_train.objectives.codo:CoDo",
    "image": "codo_train.objectives.image:Image",
    "supervised": "codo_train.objectives.supervised:Supervised",
})


def objective_class(name: str) -> "type[Objective]":
    """OBJECTIVES[name]; InputError where none is registered under it (a checkpoint of an objective whose
    module this process has not imported)."""
    if name not in OBJECTIVES:
        raise InputError(f"objective {name!r} is not registered (registered: {', '.join(OBJECTIVES)}); "
                         "import the module that registers it first")
    return OBJECTIVES[name]


def build_model(config: "ModelConfig") -> "nn.Module":
    """The model `config` describes, built by its objective from torch's RNG (after torch.manual_seed(seed),
    the weights a run of that seed started from)."""
    return objective_class(config.objective).build(config)
