"""A PNG grid of samples x views with exact boxes and jittered RoIs drawn in two colours, each box
labelled with its instance id and class."""

from pathlib import Path

import cv2
import numpy as np

from .io.atomic import atomic_open
from .sample import Sample

BOX_COLOUR = (0, 255, 0)  # exact boxes: green
ROI_COLOUR = (255, 0, 255)  # jittered RoIs: magenta
GAP = 4
GAP_COLOUR = (40, 40, 40)


def cell_origin(row: int, col: int, cell: int) -> tuple[int, int]:
    """Top-left pixel (x, y) of grid cell (row, col)."""
    return GAP + col * (cell + GAP), GAP + row * (cell + GAP)


def caption(instance_id: int, labels: list[str] | None = None) -> str:
    """The text at a box's corner: its instance id, then its class name when it has one."""
    name = labels[instance_id] if labels else ""
    return f"{instance_id} {name}" if name else str(instance_id)


def draw_view(image: np.ndarray, boxes: np.ndarray, rois: np.ndarray, ids: np.ndarray,
              labels: list[str] | None = None) -> np.ndarray:
    """A copy of `image` with RoIs, then boxes on top, and each box's `caption` at its corner
    (`labels[id]` = the class of instance `id`)."""
    out = image.copy()
    for (x1, y1, x2, y2) in rois:
        cv2.rectangle(out, (int(x1), int(y1)), (int(np.ceil(x2)) - 1, int(np.ceil(y2)) - 1), ROI_COLOUR, 1)
    for (x1, y1, x2, y2), i in zip(boxes, ids):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), BOX_COLOUR, 1)
        text = caption(int(i), labels)
        cv2.putText(out, text, (int(x1) + 2, int(y1) + 11), cv2.FONT_HERSHEY_PLAIN, 0.8, BOX_COLOUR, 1)
    return out


def preview_grid(samples: list[Sample]) -> np.ndarray:
    """RGB grid: one row per sample, one column per view, each view at its own size in a square cell,
    boxes captioned with id and class."""
    cell = max(v.image.shape[0] for s in samples for v in s.views)
    cols = max(len(s.views) for s in samples)
    grid = np.full((GAP + len(samples) * (cell + GAP), GAP + cols * (cell + GAP), 3), GAP_COLOUR, np.uint8)
    for r, sample in enumerate(samples):
        for c, v in enumerate(sample.views):
            x, y = cell_origin(r, c, cell)
            h, w = v.image.shape[:2]
            grid[y:y + h, x:x + w] = draw_view(v.image, v.boxes, v.rois, v.ids, sample.labels)
    return grid


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write `rgb` as a PNG, atomically."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    with atomic_open(path) as fh:
        fh.write(buf.tobytes())
