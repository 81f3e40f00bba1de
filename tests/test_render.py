"""One view rendered from hand-built cutouts: occlusion, truncation, blends, jitter, flip, photometrics."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from codo_aug.modes import BLENDS
from codo_aug.recipes.recipe import PasteDraw, PhotoDraw, ViewDraw
from codo_aug.render.blend import alpha_blend, motion_kernel, object_mask
from codo_aug.render.layout import ViewRules
from codo_aug.render.paint import render_view
from codo_aug.render.gaussian import gaussian_blur
from codo_aug.render.photometric import apply_photo

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")
GREY = np.full((100, 100, 3), 50, np.uint8)
NO_JITTER = (0.0, 0.0, 0.0, 0.0)
RULES = ViewRules(min_visibility=0.3)


def solid(w: int, h: int, rgb) -> np.ndarray:
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    return out


def blend_paste(canvas: np.ndarray, rgba: np.ndarray, x: int, y: int, mode: str, args: tuple) -> np.ndarray:
    """Paste `rgba` at (x, y) with the kernel of blend `mode`; the object mask it covers."""
    alpha = np.ascontiguousarray(rgba[:, :, 3])
    BLENDS[mode].kernel(canvas, np.ascontiguousarray(rgba[:, :, :3]), alpha, x, y, args)
    return object_mask(canvas.shape[:2], alpha, x, y)


def view(pastes, jitter=(NO_JITTER, NO_JITTER), flip=False, mode="relative", photo=PhotoDraw()) -> ViewDraw:
    # crop (1.0, 0, 0) takes the whole 100x100 background; size 100 keeps pixel units simple
    return ViewDraw(100, 0, (1.0, 0.0, 0.0), flip, tuple(pastes), mode, tuple(jitter), photo)


def test_later_paste_shrinks_earlier_box_and_mask_to_their_visible_part():
    red, green = solid(40, 40, (255, 0, 0)), solid(40, 20, (0, 255, 0))
    # slot 0: 40x40 at (0, 0); slot 1: 40x20 (scale 0.4 = longest side 40) at (0, 0) covers its top half
    v = render_view(view([PasteDraw(0, 0.4, 0.0, 0.0), PasteDraw(1, 0.4, 0.0, 0.0)]), GREY, [red, green],
                    RULES)
    assert v.ids.tolist() == [0, 1]
    assert v.boxes.tolist() == [[0, 20, 40, 40], [0, 0, 40, 20]]
    assert v.masks.sum(axis=(1, 2)).tolist() == [800, 800]
    assert v.image[10, 10].tolist() == [0, 255, 0]
    assert v.image[30, 30].tolist() == [255, 0, 0]
    assert v.image[50, 50].tolist() == [50, 50, 50]


def test_l_shaped_visible_part_keeps_the_full_box():
    big, corner = solid(40, 40, (255, 0, 0)), solid(20, 20, (0, 0, 255))
    v = render_view(view([PasteDraw(0, 0.4, 0.0, 0.0), PasteDraw(1, 0.2, 0.0, 0.0)]), GREY, [big, corner],
                    RULES)
    assert v.boxes.tolist() == [[0, 0, 40, 40], [0, 0, 20, 20]]
    assert v.masks[0].sum() == 1600 - 400


def test_mostly_covered_instance_leaves_the_view():
    small, big = solid(20, 20, (255, 0, 0)), solid(40, 40, (0, 0, 255))
    v = render_view(view([PasteDraw(0, 0.2, 0.0, 0.0), PasteDraw(1, 0.4, 0.0, 0.0)]), GREY, [small, big],
                    RULES)
    assert v.ids.tolist() == [1] and v.boxes.tolist() == [[0, 0, 40, 40]] and v.masks.shape == (1, 100, 100)
    # 40x40 under a 20x20 corner: 75 % visible stays
    big_red, corner = solid(40, 40, (255, 0, 0)), solid(20, 20, (0, 0, 255))
    assert render_view(view([PasteDraw(0, 0.4, 0.0, 0.0), PasteDraw(1, 0.2, 0.0, 0.0)]), GREY,
                       [big_red, corner], RULES).ids.tolist() == [0, 1]


def test_truncation_cuts_the_box_at_the_view_edge_and_counts_towards_visibility():
    red = solid(40, 20, (255, 0, 0))
    # truncation 0.25: x ranges over [-10, 70]; u = 0 puts the 40x20 object at x = -10, y = -5
    v = render_view(view([PasteDraw(0, 0.4, 0.0, 0.0)], jitter=(NO_JITTER,)), GREY, [red],
                    ViewRules(0.3, max_truncation=0.25))
    assert v.boxes.tolist() == [[0, 0, 30, 15]]
    assert v.masks[0].sum() == 30 * 15
    # the same cut with a 60 % visibility floor: 450 / 800 = 56 % visible, so it leaves
    gone = render_view(view([PasteDraw(0, 0.4, 0.0, 0.0)], jitter=(NO_JITTER,)), GREY, [red],
                       ViewRules(0.6, max_truncation=0.25))
    assert gone.ids.tolist() == []


def test_relative_jitter_then_flip_moves_rois_with_the_box():
    red = solid(40, 20, (255, 0, 0))
    # 40x20 placed at u=0.5, v=0 -> x = round(0.5 * 60) = 30: box [30, 0, 70, 20]
    draw = view([PasteDraw(0, 0.4, 0.5, 0.0)], jitter=((0.1, 0.0, 0.0, 0.0),))
    v = render_view(draw, GREY, [red], RULES)
    assert v.boxes.tolist() == [[30, 0, 70, 20]] and v.rois.tolist() == [[34, 0, 74, 20]]
    flipped = render_view(view([PasteDraw(0, 0.4, 0.5, 0.0)], jitter=((0.1, 0.0, 0.0, 0.0),), flip=True),
                          GREY, [red], RULES)
    assert flipped.boxes.tolist() == [[30, 0, 70, 20]] and flipped.rois.tolist() == [[26, 0, 66, 20]]
    assert np.array_equal(flipped.image, v.image[:, ::-1])
    assert np.array_equal(flipped.masks[0], v.masks[0][:, ::-1])


def test_iou_jitter_grows_the_roi_outward_to_the_floor():
    red = solid(40, 20, (255, 0, 0))
    # area draw 1 -> RoI area = box / 0.5; split 0.5 -> both sides x sqrt(2); left/top 0.5 -> centred
    v = render_view(view([PasteDraw(0, 0.4, 0.5, 0.5)], jitter=((1.0, 0.5, 0.5, 0.5),), mode="iou"),
                    GREY, [red], ViewRules(0.3, iou_floor=0.5))
    (bx1, by1, bx2, by2), (rx1, ry1, rx2, ry2) = v.boxes[0], v.rois[0]
    assert (bx1, by1, bx2, by2) == (30, 40, 70, 60)
    assert (rx2 - rx1 == pytest.approx(40 * 2 ** 0.5, abs=1e-3)
            and ry2 - ry1 == pytest.approx(20 * 2 ** 0.5, abs=1e-3))
    assert (rx1 + rx2) / 2 == pytest.approx(50) and (ry1 + ry2) / 2 == pytest.approx(50)


def test_clipped_rois_stay_in_the_view():
    red = solid(40, 40, (255, 0, 0))
    v = render_view(view([PasteDraw(0, 0.4, 1.0, 1.0)], jitter=((0.2, 0.2, 0.1, 0.1),)), GREY, [red], RULES)
    assert v.boxes.tolist() == [[60, 60, 100, 100]] and v.rois.tolist() == [[68, 68, 100, 100]]


def test_alpha_blend_rounds_like_integer_compositing():
    canvas = np.full((4, 4, 3), 100, np.uint8)
    rgb = np.full((2, 2, 3), 200, np.uint8)
    alpha_blend(canvas, rgb, np.array([[255, 0], [128, 127]], np.uint8), 1, 1)
    assert canvas[1, 1].tolist() == [200] * 3 and canvas[1, 2].tolist() == [100] * 3
    assert canvas[2, 1].tolist() == [150] * 3  # (200*128 + 100*127 + 127) // 255


def test_alpha_blend_equals_the_integer_formula_on_every_alpha_and_canvas_value():
    a, c = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rng = np.random.default_rng(0)
    for _ in range(4):
        rgb = rng.integers(0, 256, (256, 256, 3)).astype(np.uint8)
        canvas = np.repeat(c[:, :, None], 3, axis=2).astype(np.uint8)
        want = (rgb.astype(np.int64) * a[:, :, None] + canvas.astype(np.int64) * (255 - a[:, :, None])
                + 127) // 255
        alpha_blend(canvas, rgb, a.astype(np.uint8), 0, 0)
        assert np.array_equal(canvas, want)


def test_gaussian_feathers_the_edge_but_keeps_the_object_mask():
    canvas = np.zeros((40, 40, 3), np.uint8)
    mask = blend_paste(canvas, solid(20, 20, (200, 200, 200)), 10, 10, "gaussian", (2.0,))
    assert mask.sum() == 400 and mask[10:30, 10:30].all()
    assert canvas[20, 20, 0] == 200  # the centre is untouched
    assert 60 < canvas[20, 10, 0] < 140  # the edge is about half way
    assert 0 < canvas[20, 8, 0] < 60  # the feather reaches outside the object


def test_motion_kernel_and_blend():
    k = motion_kernel(5, 0.0)
    assert k.shape == (5, 5) and k[2].tolist() == pytest.approx([0.2] * 5) and k.sum() == pytest.approx(1.0)
    canvas = np.zeros((40, 40, 3), np.uint8)
    blend_paste(canvas, solid(10, 10, (250, 250, 250)), 15, 15, "motion", (7.0, 0.0))
    row = canvas[20, :, 0].astype(int)
    assert row[20] == 250 and 0 < row[13] < 250 and row[10] == 0  # smeared sideways only
    assert canvas[12, 20, 0] == 0


@pytest.mark.parametrize("x, y", [(0, 0), (30, 30), (-5, 12), (35, -3)])
def test_poisson_is_safe_at_the_border_and_changes_only_the_object(x, y):
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    before = canvas.copy()
    cut = solid(10, 10, (0, 0, 0))
    cut[:, :, :3] = rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)  # texture: poisson keeps gradients
    mask = blend_paste(canvas, cut, x, y, "poisson", ())
    assert mask.sum() == len(range(max(x, 0), min(x + 10, 40))) * len(range(max(y, 0), min(y + 10, 40)))
    changed = (canvas != before).any(axis=2)
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert changed[mask].mean() > 0.9, "the whole object is cloned, rim included"
    assert not changed[~ring].any(), "nothing changes beyond a 1-pixel ring around the object"


def test_photometrics_on_hand_values():
    img = np.array([[[100, 150, 200]]], np.uint8)
    assert apply_photo(img, PhotoDraw()) is img
    assert apply_photo(img, PhotoDraw(brightness=1.5)).tolist() == [[[150, 225, 255]]]
    # saturation 0 -> the grey of the pixel (0.299*100 + 0.587*150 + 0.114*200 = 140.8)
    assert apply_photo(img, PhotoDraw(saturation=0.0)).tolist() == [[[141, 141, 141]]]
    assert apply_photo(img, PhotoDraw(solarize=True)).tolist() == [[[100, 105, 55]]]
    assert apply_photo(img, PhotoDraw(grayscale=True)).tolist() == [[[141, 141, 141]]]
    # a half turn of hue swaps the colour to its complement's hue (blue-ish -> orange-ish)
    turned = apply_photo(img, PhotoDraw(hue=0.5))[0, 0]
    assert turned[0] > turned[2]
    two = np.array([[[0, 0, 0], [200, 200, 200]]], np.uint8)
    assert apply_photo(two, PhotoDraw(contrast=0.5)).tolist() == [[[50] * 3, [150] * 3]]


@pytest.mark.parametrize("sigma", [0.3, 0.77, 1.5, 3.3])
def test_gaussian_blur_is_cv2s_within_a_level_on_a_real_photo(sigma):
    """render.gaussian's float separable filter against cv2.GaussianBlur's 8-bit fixed-point path."""
    photos = sorted((DATA / "scratch").glob("*/*.jpg"))
    if not photos:
        pytest.skip(f"real test data not in {DATA}: run scripts/fetch_test_data.sh")
    photo = cv2.imread(str(photos[0]))
    fast, ref = gaussian_blur(photo, sigma).astype(int), cv2.GaussianBlur(photo, (0, 0), sigma).astype(int)
    assert np.abs(fast - ref).max() <= 1 and np.abs(fast - ref).mean() < 0.05
    assert (np.abs(fast - photo).mean() > 0.5) == (sigma > 0.5)  # at 0.3 the side taps weigh 0.004


def test_gaussian_blur_of_alpha_with_a_constant_border_is_symmetric_and_fades_out():
    alpha = np.zeros((30, 30), np.uint8)
    alpha[10:20, 10:20] = 255
    out = gaussian_blur(alpha, 2.0, cv2.BORDER_CONSTANT)
    assert np.array_equal(out, out[::-1]) and np.array_equal(out, out.T)
    assert out[0, 0] == 0 and out[15, 15] > 200 and 100 < out[15, 10] < 160
