"""Recipe dataclasses: a sample's random choices as frozen, JSON-round-trippable data.

Geometry is kept as fractions (scale of the view, position in the free space) so a recipe is
drawn from source sizes alone and rendered later against the real pixels.
"""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class InstanceDraw:
    """One instance of the sample: its index in the instance source and a random rect.

    `rect` = (area, log_ratio, u, v): the InsLoc-style crop of `rect` cutouts, and the box that
    seeds `grabcut` when the file has no box of its own; unused by mask and alpha cutouts.
    `substitute`: the item pasted instead when item `source` failed to decode (set by the layout, so a
    final recipe names every file it shows); None when `source` is pasted.
    """

    source: int
    rect: tuple[float, float, float, float]
    substitute: int | None = None

    @property
    def used(self) -> int:
        """The instance source item pasted."""
        return self.source if self.substitute is None else self.substitute


@dataclass(frozen=True)
class PasteDraw:
    """Where instance `slot` goes in a view, which part of it shows, and how it is blended.

    Longer side = `scale` x view size; (u, v) = position in the free space (truncation included);
    `blend_args`: (sigma,) for gaussian, (length, angle in degrees) for motion, () otherwise;
    `crop`: this view's crop (area, log_ratio, u, v) of the cutout (SynthConfig.view_crop), or ()
    for the whole cutout (as in recipes made before view crops existed).
    """

    slot: int
    scale: float
    u: float
    v: float
    blend: str = "hard"
    blend_args: tuple[float, ...] = ()
    crop: tuple[float, ...] = ()


@dataclass(frozen=True)
class PhotoDraw:
    """Photometric draws of one view; the identity when nothing applies.

    Colour jitter factors (brightness, contrast, saturation multiply; hue shifts by a fraction of
    the colour circle) are applied in `order` (0..3 = b, c, s, h), then greyscale, blur, solarize.
    """

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    order: tuple[int, ...] = (0, 1, 2, 3)
    grayscale: bool = False
    blur_sigma: float = 0.0
    solarize: bool = False


@dataclass(frozen=True)
class ViewDraw:
    """One view: size, background (index and square crop (area, u, v)), flip, pastes, RoI jitter,
    photometrics.

    `pastes` are in paste order (later ones on top). `jitter[slot]` holds four draws whose meaning
    depends on `jitter_mode`: relative deltas (dx1, dy1, dw, dh), or iou draws (area, split, left, top).
    `background_substitute`, as InstanceDraw.substitute: the background used when item `background` failed.
    """

    size: int
    background: int
    crop: tuple[float, float, float]
    flip: bool
    pastes: tuple[PasteDraw, ...]
    jitter_mode: str
    jitter: tuple[tuple[float, float, float, float], ...]
    photo: PhotoDraw = PhotoDraw()
    background_substitute: int | None = None

    @property
    def background_used(self) -> int:
        """The background source item this view shows."""
        return self.background if self.background_substitute is None else self.background_substitute


@dataclass(frozen=True)
class Recipe:
    """All random choices of sample `index` under `seed` (after `attempt` redraws); once laid out
    (Synthesizer.layout), also the items that replace files failing to decode: then final, painting it
    reads nothing else."""

    seed: int
    index: int
    attempt: int
    instances: tuple[InstanceDraw, ...]
    views: tuple[ViewDraw, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        """The recipe of `to_dict`'s output (recipes written before substitutes were recorded lack them)."""
        def view(v: dict) -> ViewDraw:
            photo = dict(v["photo"], order=tuple(v["photo"]["order"]))
            return ViewDraw(
                size=int(v["size"]),
                background=int(v["background"]),
                crop=tuple(v["crop"]),
                flip=bool(v["flip"]),
                pastes=tuple(PasteDraw(**dict(p, blend_args=tuple(p["blend_args"]),
                                              crop=tuple(p.get("crop", ())))) for p in v["pastes"]),
                jitter_mode=v["jitter_mode"],
                jitter=tuple(tuple(j) for j in v["jitter"]),
                photo=PhotoDraw(**photo),
                background_substitute=_item(v.get("background_substitute")),
            )

        return cls(
            seed=int(d["seed"]),
            index=int(d["index"]),
            attempt=int(d["attempt"]),
            instances=tuple(InstanceDraw(int(i["source"]), tuple(i["rect"]), _item(i.get("substitute")))
                            for i in d["instances"]),
            views=tuple(view(v) for v in d["views"]),
        )


def _item(value) -> int | None:
    return None if value is None else int(value)
