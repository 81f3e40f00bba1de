"""Synthesizer: sample(seed, index) -> recipe -> layout -> painted multi-view sample, with redraws.

A drawn recipe is laid out first (render.layout: instance pixels, placement, visibility; no painting) and
redrawn (next attempt) while no instance stays visible in every view; a file that fails to decode is
replaced by the next usable one, and the layout writes that substitute into the recipe, which is then
final: painting it (render.paint) chooses nothing. Sample *i* depends only on (config, sources, seed, i).
"""

import copy
from dataclasses import dataclass, replace
from functools import cached_property
import numpy as np

from .config import SynthConfig
from .errors import InputError, RunError
from .recipes.recipe import Recipe, ViewDraw
from .recipes.sampler import class_members, sample_recipe
from .render.layout import ViewLayout, ViewRules, layout_view
from .render.paint import paint_view
from .sample import Sample
from .sources.base import Source
from .sources.decode import BadImage
from .sources.sizing import cut_needs
from .sources.skips import SkipLog
from .sources.spec import open_source
from .substitutes import Tried, first_good


def shared_ids(view: ViewLayout, used: list[int]) -> ViewLayout:
    """`view` with each slot's id replaced by the first slot pasting the same item: one item is never
    two instances (repeats, or a failed file replaced by one already drawn, are the same positive)."""
    first = np.array([used.index(i) for i in used], dtype=np.int64)
    return replace(view, ids=first[view.ids])


@dataclass(frozen=True)
class SampleLayout:
    """A sample but its pixels: its final recipe (substitutes recorded), each view's layout, and per view
    the background image when the layout decoded it (paint decodes the others: no file twice a sample)."""

    recipe: Recipe
    views: tuple[ViewLayout, ...]
    backgrounds: tuple[np.ndarray | None, ...]


class Synthesizer:
    """Renders samples from an instance source and a background source under one config and seed.

    `defer_photometrics` renders the views without their photometric draws and hands those on in
    `Sample.photo` (for codo_train's device photometrics: colour, blur and solarize are about a quarter
    of rendering's CPU time).
    """

    def __init__(self, instances: Source, backgrounds: Source, config: SynthConfig | None = None,
                 seed: int = 0, defer_photometrics: bool = False, backgrounds_tried: Tried | None = None):
        if seed < 0:
            raise InputError(f"invalid seed={seed}: must be >= 0")
        self.instances = instances
        self.backgrounds = backgrounds
        self.config = config or SynthConfig()
        instances.check(self.config)
        backgrounds.check(self.config)
        self.seed = seed
        self.rules = ViewRules(self.config.min_visibility, self.config.max_truncation, self.config.iou_floor,
                               None if defer_photometrics else self.config.photometric)
        #: Files that failed while rendering (after passing the header check), and cutouts too small.
        self.render_skips = SkipLog()
        self._instances_tried = Tried()
        #: What was learnt of the background files (given: shared with another Synthesizer over them).
        self.backgrounds_tried = backgrounds_tried or Tried()

    @classmethod
    def from_specs(cls, instances: str, backgrounds: str, config: SynthConfig | None = None,
                   seed: int = 0, defer_photometrics: bool = False) -> "Synthesizer":
        """Open the `KIND[:PATH]` sources (each filtered by the config's minimum sides) and build one."""
        config = config or SynthConfig()
        return cls(open_source(instances, "instances", config.min_instance_side),
                   open_source(backgrounds, "backgrounds", config.min_background_side), config, seed,
                   defer_photometrics)

    @cached_property
    def classes(self) -> list[np.ndarray]:
        """Instance indices per class of the instance source (for `balance_classes`)."""
        return class_members([it.label for it in self.instances.items])

    @cached_property
    def rectangular(self) -> list[bool]:
        """Per instance: whether its cutout is a filled rectangle (for `view_crop` 'auto')."""
        return [self.instances.rectangular(i, self.config.cutout) for i in range(len(self.instances))]

    def recipe(self, index: int, attempt: int = 0) -> Recipe:
        """The drawn recipe of (index, attempt), before its layout (which records any substitute file)."""
        classes = self.classes if self.config.balance_classes else None
        return sample_recipe(self.config, len(self.instances), len(self.backgrounds), self.seed, index,
                             attempt, classes, self.rectangular)

    def layout(self, recipe: Recipe) -> SampleLayout | None:
        """Lay out `recipe`; None when no instance is visible in every view.

        An instance or background whose file fails is replaced by the next usable item of its source,
        starting from the recipe's substitute where it names one, and the returned recipe names it: painting
        that recipe again needs no search. Backgrounds are tried only for a layout that is kept, and decoded
        here only the first time (whether a file decodes depends on the file alone); paint decodes the rest.
        Each instance's JPEG is decoded at the libjpeg reduction its pastes allow (sources.sizing.CutNeed),
        so a paste is shrunk from a reduced decode: against full-size decodes the same instances and ids
        show, boxes move by at most 1 px (a reduced cut's sides round differently, which may also move a
        paste by a pixel) and the mean absolute view-pixel difference measured 0.08 (default config, 480 x
        360 photos as rect instances), 0.38 (scale 0.1-0.6) and 1.2 (1280 x 960 photos) of 255.
        """
        cfg = self.config
        instances, cutouts = [], []
        for d, need in zip(recipe.instances, cut_needs(recipe)):
            i, cut = first_good(
                self.instances, d.used,
                lambda i, d=d, need=need: self.instances.cutout(i, d.rect, cfg.cutout, cfg.min_instance_side,
                                                                need),
                self._instances_tried, self.render_skips)
            instances.append(replace(d, substitute=None if i == d.source else i))
            cutouts.append(cut)
        used = [d.used for d in instances]
        views = tuple(shared_ids(layout_view(draw, cutouts, self.rules), used) for draw in recipe.views)
        if not set.intersection(*(set(v.ids.tolist()) for v in views)):
            return None
        draws, backgrounds = [], []
        for draw in recipe.views:
            i, image = draw.background_used, None
            if i not in self.backgrounds_tried.sound:
                i, image = first_good(self.backgrounds, i, lambda i, d=draw: self._background(d, i),
                                      self.backgrounds_tried, self.render_skips)
            draws.append(replace(draw, background_substitute=None if i == draw.background else i))
            backgrounds.append(image)
        return SampleLayout(replace(recipe, instances=tuple(instances), views=tuple(draws)), views,
                            tuple(backgrounds))

    def _background(self, draw: ViewDraw, i: int) -> np.ndarray:
        """Background item `i` decoded for `draw`'s view, at the libjpeg reduction its size and crop allow."""
        return self.backgrounds.background(i, draw.size, draw.crop[0])

    def _known_background(self, draw: ViewDraw) -> np.ndarray:
        """The background of a final `draw`, which decoded before: RunError if it no longer does."""
        try:
            return self._background(draw, draw.background_used)
        except BadImage as bad:
            raise RunError(f"{bad} (it decoded earlier in this run: was the file changed?)") from None

    def paint(self, layout: SampleLayout) -> Sample:
        """The sample of `layout`: each view painted on its background (no draw, no file chosen here)."""
        recipe = layout.recipe
        views = [paint_view(draw, view, self._known_background(draw) if image is None else image, self.rules)
                 for draw, view, image in zip(recipe.views, layout.views, layout.backgrounds)]
        items = [self.instances.items[d.used] for d in recipe.instances]
        return Sample(
            index=recipe.index,
            recipe=recipe,
            views=views,
            labels=[it.label for it in items],
            instance_files=[it.path for it in items],
            background_files=[self.backgrounds.items[d.background_used].path for d in recipe.views],
            photo=None if self.rules.photometric is not None else [v.photo for v in recipe.views],
        )

    def render(self, recipe: Recipe) -> Sample | None:
        """Lay out and paint `recipe`; None when no instance is visible in every view."""
        layout = self.layout(recipe)
        return None if layout is None else self.paint(layout)

    def check_usable(self) -> None:
        """Lay out sample 0 on a scratch copy (its skips stay out of this one's counts), so a source whose
        every file passes the header check but fails to decode is an input error before any output."""
        scratch = copy.copy(self)
        scratch.render_skips = SkipLog()
        scratch._instances_tried, scratch.backgrounds_tried = Tried(), Tried()
        scratch.sample_layout(0)

    def sample_layout(self, index: int) -> SampleLayout:
        """The layout of sample `index`: the first attempt whose recipe leaves an instance visible in every
        view, tried on layouts alone. Its recipe is the sample's, final (`.recipe`)."""
        for attempt in range(self.config.max_attempts):
            layout = self.layout(self.recipe(index, attempt))
            if layout is not None:
                return layout
        raise RunError(
            f"sample {index}: no instance stayed visible in all views in {self.config.max_attempts} "
            "attempts; lower min_visibility or the instance count, or check the sources"
        )

    def sample(self, index: int) -> Sample:
        """Sample `index`: its layout, painted."""
        return self.paint(self.sample_layout(index))
