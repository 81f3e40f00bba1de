"""ModelConfig: all a trained model is rebuilt from (nanoGPT's `model_args`), stored in checkpoints beside the
weights, so export, probe and health need none of the run's other settings."""

from dataclasses import asdict, dataclass, field

#: BYOL's projector and predictor sizes (Grill et al. 2020): hidden 4096, output 256.
PROJ_HIDDEN = 4096
PROJ_DIM = 256


@dataclass(frozen=True)
class ModelConfig:
    """`objective` (codo_train.objectives.OBJECTIVES) builds the model: a ResNet `arch` + FPN + box head that
    pools RoIs by `levels` and `level_rule`, with projector and predictor of `proj_hidden` -> `proj_dim`, an
    image-level projector where `image_level`, and `classes` (the supervised control's RoI classes)."""

    arch: str
    objective: str = "codo"
    levels: str = "size"
    level_rule: str = "soco"
    proj_hidden: int = PROJ_HIDDEN
    proj_dim: int = PROJ_DIM
    image_level: bool = False
    classes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))

    def to_dict(self) -> dict:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """The config a checkpoint's `model_config` holds."""
        return cls(**data)
