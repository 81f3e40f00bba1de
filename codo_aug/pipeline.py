"""Synthesizer: sample(seed, index) -> recipe -> rendered multi-view sample, with redraws.

A drawn sample is redrawn (next attempt) when no instance stays visible in every view; a file that
fails to decode is replaced by the next usable one. Either way sample *i* depends only on
(config, sources, seed, i).
"""

import copy
from dataclasses import replace
from functools import cached_property
from typing import Callable

import numpy as np

from .config import SynthConfig
from .errors import InputError, RunError
from .params.recipe import Recipe
from .params.sampler import class_members, sample_recipe
from .render.compose import ViewRules, render_view
from .sample import Sample, View
from .sources.base import Source
from .sources.sizing import cut_needs
from .sources.skips import SkipLog
from .sources.decode import DRAW_FAULTS, BadImage
from .sources.spec import open_source


def shared_ids(view: View, used: list[int]) -> View:
    """`view` with each slot's id replaced by the first slot pasting the same item: one item is never
    two instances (repeats, or a failed file replaced by one already drawn, are the same positive)."""
    first = np.array([used.index(i) for i in used], dtype=np.int64)
    return replace(view, ids=first[view.ids])


class Synthesizer:
    """Renders samples from an instance source and a background source under one config and seed.

    `defer_photometrics` renders the views without their photometric draws and hands those on in
    `Sample.photo` (for codo_train's device photometrics: colour, blur and solarize are about a quarter
    of rendering's CPU time).
    """

    def __init__(self, instances: Source, backgrounds: Source, config: SynthConfig | None = None,
                 seed: int = 0, defer_photometrics: bool = False):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
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
        self._broken: set[tuple[int, int]] = set()

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
        classes = self.classes if self.config.balance_classes else None
        return sample_recipe(self.config, len(self.instances), len(self.backgrounds), self.seed, index,
                             attempt, classes, self.rectangular)

    def _first_good(self, source, start: int, load: Callable[[int], np.ndarray]) -> tuple[int, np.ndarray]:
        """`load` of item `start`, or of the next items in turn when it fails (counted in render_skips).

        Whether an item fails depends on its file (and draws) alone, so the substitute is the same
        in every process. Files that fail to decode are remembered and not tried again.
        """
        n = len(source)
        for step in range(n):
            i = (start + step) % n
            if (id(source), i) in self._broken:
                continue
            try:
                return i, load(i)
            except BadImage as bad:
                self.render_skips.add(bad)
                if bad.reason not in DRAW_FAULTS:
                    self._broken.add((id(source), i))
        skips = SkipLog(dict(source.skipped.reasons))  # what the scan refused, and what failed here
        skips.merge({p: r for p, r in self.render_skips.reasons.items() if p.startswith(str(source.root))})
        raise InputError(f"no item of the {source.role} source ({source.kind}) could be used: "
                         f"{skips.summary()}")

    def render(self, recipe: Recipe) -> Sample | None:
        """Render `recipe`; None when no instance is visible in every view.

        An instance or background whose file fails is replaced by the next usable item of its source.
        Each instance's JPEG is decoded at the libjpeg reduction its pastes allow (sources.sizing.CutNeed),
        so a paste is shrunk from a reduced decode: against full-size decodes the same instances and ids
        show, boxes move by at most 1 px (a reduced cut's sides round differently, which may also move a
        paste by a pixel) and the mean absolute view-pixel difference measured 0.08 (default config, 480 x
        360 photos as rect instances), 0.38 (scale 0.1-0.6) and 1.2 (1280 x 960 photos) of 255.
        """
        cfg = self.config
        used, cutouts = [], []
        for d, need in zip(recipe.instances, cut_needs(recipe)):
            i, cut = self._first_good(
                self.instances, d.source,
                lambda i, d=d, need=need: self.instances.cutout(i, d.rect, cfg.cutout, cfg.min_instance_side,
                                                                need))
            used.append(i)
            cutouts.append(cut)
        views, background_files = [], []
        for draw in recipe.views:
            i, image = self._first_good(self.backgrounds, draw.background,
                                        lambda i, d=draw: self.backgrounds.background(i, d.size, d.crop[0]))
            views.append(shared_ids(render_view(draw, image, cutouts, self.rules), used))
            background_files.append(self.backgrounds.items[i].path)
        common = set(views[0].ids.tolist())
        for v in views[1:]:
            common &= set(v.ids.tolist())
        if not common:
            return None
        items = [self.instances.items[i] for i in used]
        return Sample(
            index=recipe.index,
            recipe=recipe,
            views=views,
            labels=[it.label for it in items],
            instance_files=[it.path for it in items],
            background_files=background_files,
            photo=None if self.rules.photometric is not None else [v.photo for v in recipe.views],
        )

    def check_usable(self) -> None:
        """Render sample 0 on a scratch copy (its skips stay out of this one's counts), so a source whose
        every file passes the header check but fails to decode is an input error before any output."""
        scratch = copy.copy(self)
        scratch.render_skips, scratch._broken = SkipLog(), set()
        scratch.sample(0)

    def sample(self, index: int) -> Sample:
        """Sample `index`: the first attempt whose recipe renders with an instance common to all views."""
        for attempt in range(self.config.max_attempts):
            sample = self.render(self.recipe(index, attempt))
            if sample is not None:
                return sample
        raise RunError(
            f"sample {index}: no instance stayed visible in all views in {self.config.max_attempts} "
            "attempts; lower min_visibility or the instance count, or check the sources"
        )
