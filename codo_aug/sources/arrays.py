"""ArrayInstances: instances held in memory (cut from one image's boxes and masks), for transforms."""

import numpy as np

from ..config import SynthConfig
from .base import Item
from .cutout import crop_box, crop_to_mask
from .decode import BadImage
from .sizing import CutNeed


class ArrayInstances:
    """An instance pool over ready RGBA cutouts, with the interface the Synthesizer uses from a Source."""

    kind = "input"

    def __init__(self, cutouts: list[np.ndarray], labels: list[str], origin: list[int] | None = None):
        self.cutouts = cutouts
        #: For each cutout, the index of the input box it came from.
        self.origin = origin if origin is not None else list(range(len(cutouts)))
        self.items = [Item(f"<input>#{k}", label) for k, label in zip(self.origin, labels)]

    def __len__(self) -> int:
        return len(self.cutouts)

    def check(self, config: SynthConfig) -> None:
        """As Source.check: ready cutouts serve any config."""

    def cutout(self, i: int, rect, how: str = "auto", min_side: int = 1,
               need: CutNeed | None = None) -> np.ndarray:
        """Cutout `i` as given (`rect`, `how`, `min_side` and `need` do not apply to cut arrays)."""
        return self.cutouts[i]

    def rectangular(self, i: int, how: str = "auto") -> bool:
        """Whether cutout `i` is a filled rectangle (a box without a mask), as Source.rectangular."""
        return bool((self.cutouts[i][:, :, 3] == 255).all())

    @classmethod
    def from_image(cls, rgb: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None, labels: list[str],
                   min_side: int) -> "ArrayInstances":
        """Cut each XYXY box of `rgb` (by its mask when given); boxes under `min_side` px are left out."""
        cutouts, kept = [], []
        for k, box in enumerate(boxes):
            cut = crop_to_mask(rgb, masks[k]) if masks is not None else crop_box(rgb, tuple(box))
            if cut is not None and min(cut.shape[:2]) >= min_side:
                cutouts.append(cut)
                kept.append(k)
        if not cutouts:
            raise BadImage("no-instance", "<input>", f"no box of at least {min_side} px")
        return cls(cutouts, [labels[k] for k in kept], kept)
