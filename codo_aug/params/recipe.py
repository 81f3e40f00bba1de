"""Recipe dataclasses: a sample's random choices as frozen, JSON-round-trippable data.

Geometry is kept as fractions (scale of the view, position in the free space) so a recipe is
drawn from source sizes alone and rendered later against the real pixels.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InstanceDraw:
    """One instance of the sample: its index in the instance source and, for rect cutouts, the crop.

    `rect` = (area, log_ratio, u, v) of an InsLoc-style random crop; unused by mask and alpha cutouts.
    """

    source: int
    rect: tuple[float, float, float, float]


@dataclass(frozen=True)
class PasteDraw:
    """Where instance `slot` goes in a view: longer side = `scale` x view size, at (u, v) of the free space."""

    slot: int
    scale: float
    u: float
    v: float


@dataclass(frozen=True)
class ViewDraw:
    """One view: its size, background (index and square crop (area, u, v)), flip, pastes and jitter.

    `pastes` are in paste order (later ones on top); `jitter[slot]` holds the relative RoI deltas
    (dx1, dy1, dw, dh) of that slot, zeros where the box is not jittered.
    """

    size: int
    background: int
    crop: tuple[float, float, float]
    flip: bool
    pastes: tuple[PasteDraw, ...]
    jitter: tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class Recipe:
    """All random choices of sample `index` under `seed` (after `attempt` redraws)."""

    seed: int
    index: int
    attempt: int
    instances: tuple[InstanceDraw, ...]
    views: tuple[ViewDraw, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        return cls(
            seed=int(d["seed"]),
            index=int(d["index"]),
            attempt=int(d["attempt"]),
            instances=tuple(InstanceDraw(int(i["source"]), tuple(i["rect"])) for i in d["instances"]),
            views=tuple(
                ViewDraw(
                    size=int(v["size"]),
                    background=int(v["background"]),
                    crop=tuple(v["crop"]),
                    flip=bool(v["flip"]),
                    pastes=tuple(PasteDraw(int(p["slot"]), p["scale"], p["u"], p["v"]) for p in v["pastes"]),
                    jitter=tuple(tuple(j) for j in v["jitter"]),
                )
                for v in d["views"]
            ),
        )
