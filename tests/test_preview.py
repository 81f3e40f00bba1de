"""Preview grid: its size, and box and RoI edges drawn in their colours at the right pixels."""

import cv2
import numpy as np

from codo_aug import SynthConfig, Synthesizer, open_source
from codo_aug.preview import BOX_COLOUR, GAP, ROI_COLOUR, caption, cell_origin, draw_view, preview_grid

from .helpers import cli

# one instance per sample and RoIs grown outward (IoU jitter always on): box and RoI edges differ
CFG = SynthConfig(instances_per_sample=(1, 1), jitter="iou", jitter_p=1.0)


def test_grid_size_and_edges():
    synth = Synthesizer(open_source("sample", "instances"), open_source("sample", "backgrounds"), CFG, seed=5)
    samples = [synth.sample(i) for i in range(2)]
    grid = preview_grid(samples)
    assert grid.shape == (GAP + 2 * (224 + GAP), GAP + 3 * (224 + GAP), 3)
    checked_rois = 0
    for r, s in enumerate(samples):
        for c, v in enumerate(s.views):
            ox, oy = cell_origin(r, c, 224)
            x1, y1, x2, y2 = v.boxes[0].astype(int)
            mid = (x1 + x2) // 2
            assert tuple(grid[oy + y2 - 1, ox + mid]) == BOX_COLOUR  # bottom edge of the exact box
            assert tuple(grid[oy + (y1 + y2) // 2, ox + x1]) == BOX_COLOUR  # left edge
            rx1, ry1, rx2, ry2 = v.rois[0]
            if int(ry1) < y1:  # the RoI's top edge lies above the box: drawn in the RoI colour
                assert tuple(grid[oy + int(ry1), ox + mid]) == ROI_COLOUR
                checked_rois += 1
    assert checked_rois >= 3


def test_boxes_are_captioned_with_id_and_class_name():
    assert caption(1, ["chair", "person"]) == "1 person"
    assert caption(0) == "0" and caption(0, [""]) == "0"  # no class name: the id alone
    synth = Synthesizer(open_source("sample", "instances"), open_source("sample", "backgrounds"), CFG, seed=5)
    sample = synth.sample(0)
    v = sample.views[0]
    named = draw_view(v.image, v.boxes, v.rois, v.ids, sample.labels)
    ys, xs = np.nonzero((named != draw_view(v.image, v.boxes, v.rois, v.ids)).any(axis=2))
    x1, y1 = v.boxes[0][:2].astype(int)
    id_width = cv2.getTextSize(f"{v.ids[0]} ", cv2.FONT_HERSHEY_PLAIN, 0.8, 1)[0][0]
    # the class name is drawn in the box colour on the caption's line, after the id
    assert (named[ys, xs] == BOX_COLOUR).all(axis=1).sum() > 30
    assert xs.min() >= x1 + 2 + id_width - 1 and y1 <= ys.min() and ys.max() <= y1 + 14


def test_cli_writes_the_png(tmp_path):
    out = tmp_path / "grid.png"
    proc = cli("codo-aug", "preview", "--out", str(out), "--num-samples", "3", "--set", "view_sizes=[96, 64]")
    assert proc.returncode == 0, proc.stderr
    img = cv2.imread(str(out))
    assert img.shape == (GAP + 3 * (96 + GAP), GAP + 2 * (96 + GAP), 3)
    assert (img == np.array(BOX_COLOUR[::-1], np.uint8)).all(axis=2).sum() > 50
    bad = cli("codo-aug", "preview", "--out", str(tmp_path / "grid.jpg"))
    assert bad.returncode == 2 and "name it *.png" in bad.stderr


def test_a_negative_seed_is_a_one_line_input_error(tmp_path):
    proc = cli("codo-aug", "preview", "--out", str(tmp_path / "p.png"), "--seed", "-1", "--num-samples", "1")
    assert proc.returncode == 2 and proc.stderr.strip() == "codo-aug: error: invalid seed=-1: must be >= 0"
    assert not (tmp_path / "p.png").exists()
