"""SynthConfig: every fixed setting of the synthesis engine, validated where it is built."""

from dataclasses import asdict, dataclass, fields

from .errors import InputError

JITTER_MODES = ("relative", "none")


def _check(ok: bool, name: str, value, allowed: str) -> None:
    if not ok:
        raise InputError(f"invalid {name}={value!r}: must be {allowed}")


def _check_range(name: str, pair, low: float, high: float) -> None:
    _check(
        len(pair) == 2 and low <= pair[0] <= pair[1] <= high,
        name, pair, f"a pair (a, b) with {low} <= a <= b <= {high}",
    )


@dataclass(frozen=True)
class SynthConfig:
    """How instances become multi-view samples (DESIGN.md section 1).

    Defaults: views 224/224/112 as in SoCo (Wei et al. 2021); rect cutouts with area U(0.2, 1) and
    aspect log-U[0.5, 2] as in InsLoc (Yang et al. 2021); SoCo's relative box jitter (each of
    x1, y1, w, h moves by U(-0.1, 0.1) of the size, with probability 0.5).
    """

    view_sizes: tuple[int, ...] = (224, 224, 112)
    instances: tuple[int, int] = (1, 2)
    scale: tuple[float, float] = (0.35, 0.8)
    background_area: tuple[float, float] = (0.3, 1.0)
    rect_area: tuple[float, float] = (0.2, 1.0)
    rect_ratio: tuple[float, float] = (0.5, 2.0)
    min_visibility: float = 0.3
    flip_p: float = 0.5
    jitter: str = "relative"
    jitter_ratio: float = 0.1
    jitter_p: float = 0.5
    jpeg_quality: int = 95
    max_attempts: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "view_sizes", tuple(int(s) for s in self.view_sizes))
        for name in ("instances", "scale", "background_area", "rect_area", "rect_ratio"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _check(
            len(self.view_sizes) >= 2 and all(16 <= s <= 4096 for s in self.view_sizes),
            "view_sizes", self.view_sizes, "two or more sizes, each in 16..4096",
        )
        _check(
            len(self.instances) == 2 and 1 <= self.instances[0] <= self.instances[1] <= 16,
            "instances", self.instances, "a pair (a, b) with 1 <= a <= b <= 16",
        )
        _check_range("scale", self.scale, 0.05, 1.0)
        _check_range("background_area", self.background_area, 0.05, 1.0)
        _check_range("rect_area", self.rect_area, 0.05, 1.0)
        _check_range("rect_ratio", self.rect_ratio, 0.1, 10.0)
        _check(0.0 <= self.min_visibility <= 1.0, "min_visibility", self.min_visibility, "in 0..1")
        _check(0.0 <= self.flip_p <= 1.0, "flip_p", self.flip_p, "in 0..1")
        _check(self.jitter in JITTER_MODES, "jitter", self.jitter, f"one of {', '.join(JITTER_MODES)}")
        _check(0.0 <= self.jitter_ratio <= 0.5, "jitter_ratio", self.jitter_ratio, "in 0..0.5")
        _check(0.0 <= self.jitter_p <= 1.0, "jitter_p", self.jitter_p, "in 0..1")
        _check(1 <= self.jpeg_quality <= 100, "jpeg_quality", self.jpeg_quality, "in 1..100")
        _check(1 <= self.max_attempts <= 1000, "max_attempts", self.max_attempts, "in 1..1000")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "SynthConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown synth setting(s): {', '.join(unknown)}")
        return cls(**data)
