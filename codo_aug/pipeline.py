"""Synthesizer: sample(seed, index) -> recipe -> rendered multi-view sample, with redraws.

A drawn sample is redrawn (next attempt) when no instance stays visible in every view or when a
file fails to decode, so sample *i* depends only on (config, sources, seed, i).
"""

import logging
from dataclasses import dataclass

import numpy as np

from .config import SynthConfig
from .errors import RunError
from .params.recipe import Recipe
from .params.sampler import sample_recipe
from .render.compose import View, ViewRules, render_view
from .sources.base import SkipLog, Source
from .sources.decode import BadImage

log = logging.getLogger("codo_aug.pipeline")


@dataclass
class Sample:
    """One synthesised sample: its recipe, the views, and each instance slot's class and file."""

    index: int
    recipe: Recipe
    views: list[View]
    labels: list[str]
    instance_files: list[str]
    background_files: list[str]


class Synthesizer:
    """Renders samples from an instance source and a background source under one config and seed."""

    def __init__(self, instances: Source, backgrounds: Source, config: SynthConfig | None = None, seed: int = 0):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.instances = instances
        self.backgrounds = backgrounds
        self.config = config or SynthConfig()
        self.seed = seed
        self.rules = ViewRules(self.config.min_visibility, self.config.max_truncation, self.config.iou_floor)
        #: Files that failed to decode while rendering (after passing the header check).
        self.render_skips = SkipLog()

    def recipe(self, index: int, attempt: int = 0) -> Recipe:
        return sample_recipe(self.config, len(self.instances), len(self.backgrounds), self.seed, index, attempt)

    def render(self, recipe: Recipe) -> Sample | None:
        """Render `recipe`; None when no instance is visible in every view. BadImage on a broken file."""
        cfg = self.config
        cutouts = [self.instances.cutout(d.source, d.rect, cfg.cutout, cfg.min_instance_side) for d in recipe.instances]
        decoded: dict[int, np.ndarray] = {}
        views = []
        for draw in recipe.views:
            if draw.background not in decoded:
                decoded[draw.background] = self.backgrounds.background(draw.background)
            views.append(render_view(draw, decoded[draw.background], cutouts, self.rules))
        common = set(views[0].ids.tolist())
        for v in views[1:]:
            common &= set(v.ids.tolist())
        if not common:
            return None
        items = [self.instances.items[d.source] for d in recipe.instances]
        return Sample(
            index=recipe.index,
            recipe=recipe,
            views=views,
            labels=[it.label for it in items],
            instance_files=[it.path for it in items],
            background_files=[self.backgrounds.items[v.background].path for v in recipe.views],
        )

    def sample(self, index: int) -> Sample:
        """Sample `index`: the first attempt whose recipe renders with an instance common to all views."""
        for attempt in range(self.config.max_attempts):
            recipe = self.recipe(index, attempt)
            try:
                sample = self.render(recipe)
            except BadImage as bad:
                self.render_skips.add(bad)
                continue
            if sample is not None:
                return sample
        raise RunError(
            f"sample {index}: no usable draw in {self.config.max_attempts} attempts (no instance visible in all "
            f"views; files failing so far: {self.render_skips.summary()}); lower min_visibility or check the sources"
        )
