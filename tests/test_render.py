"""Occlusion bookkeeping, blending, jitter and flip of one view, on hand-built cutouts."""

import numpy as np

from codo_aug.params.recipe import PasteDraw, ViewDraw
from codo_aug.render.compose import paste, render_view

GREY = np.full((100, 100, 3), 50, np.uint8)
NO_JITTER = (0.0, 0.0, 0.0, 0.0)


def solid(w: int, h: int, rgb) -> np.ndarray:
    out = np.zeros((h, w, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    return out


def view(pastes, jitter=(NO_JITTER, NO_JITTER), flip=False) -> ViewDraw:
    # crop (1.0, 0, 0) takes the whole 100x100 background; size 100 keeps pixel units simple
    return ViewDraw(100, 0, (1.0, 0.0, 0.0), flip, tuple(pastes), tuple(jitter))


def test_later_paste_shrinks_earlier_box_to_its_visible_part():
    red, green = solid(40, 40, (255, 0, 0)), solid(40, 20, (0, 255, 0))
    # slot 0: 40x40 at (0, 0); slot 1: 40x20 (scale 0.4 = longest side 40) at (0, 0) covers its top half
    draw = view([PasteDraw(0, 0.4, 0.0, 0.0), PasteDraw(1, 0.4, 0.0, 0.0)])
    v = render_view(draw, GREY, [red, green], min_visibility=0.3)
    assert v.ids.tolist() == [0, 1]
    assert v.boxes.tolist() == [[0, 20, 40, 40], [0, 0, 40, 20]]
    assert v.image[10, 10].tolist() == [0, 255, 0]
    assert v.image[30, 30].tolist() == [255, 0, 0]
    assert v.image[50, 50].tolist() == [50, 50, 50]


def test_mostly_covered_instance_leaves_the_view():
    small, big = solid(20, 20, (255, 0, 0)), solid(40, 40, (0, 0, 255))
    # slot 0: 20x20 at (0, 0); slot 1: 40x40 at (0, 0) hides all of it
    draw = view([PasteDraw(0, 0.2, 0.0, 0.0), PasteDraw(1, 0.4, 0.0, 0.0)])
    v = render_view(draw, GREY, [small, big], min_visibility=0.3)
    assert v.ids.tolist() == [1]
    assert v.boxes.tolist() == [[0, 0, 40, 40]]
    # 75% hidden (visible 25% < 30%): gone; with a 20% floor it stays, box = the visible L's bounds
    corner = solid(20, 20, (0, 0, 255))
    draw = view([PasteDraw(0, 0.4, 0.0, 0.0), PasteDraw(1, 0.2, 0.0, 0.0)])
    big_red = solid(40, 40, (255, 0, 0))
    assert render_view(draw, GREY, [big_red, corner], 0.3).ids.tolist() == [0, 1]
    draw = view([PasteDraw(1, 0.2, 0.0, 0.0), PasteDraw(0, 0.4, 0.0, 0.0)])
    assert render_view(draw, GREY, [big_red, corner], 0.3).ids.tolist() == [0]


def test_jitter_then_flip_moves_rois_with_the_box():
    red = solid(40, 20, (255, 0, 0))
    # 40x20 placed at u=0.5, v=0 -> x = round(0.5 * 60) = 30: box [30, 0, 70, 20]
    draw = view([PasteDraw(0, 0.4, 0.5, 0.0)], jitter=((0.1, 0.0, 0.0, 0.0),))
    v = render_view(draw, GREY, [red], 0.3)
    assert v.boxes.tolist() == [[30, 0, 70, 20]]
    assert v.rois.tolist() == [[34, 0, 74, 20]]
    flipped = render_view(view([PasteDraw(0, 0.4, 0.5, 0.0)], jitter=((0.1, 0.0, 0.0, 0.0),), flip=True), GREY, [red], 0.3)
    assert flipped.boxes.tolist() == [[30, 0, 70, 20]]
    assert flipped.rois.tolist() == [[26, 0, 66, 20]]
    assert np.array_equal(flipped.image, v.image[:, ::-1])


def test_rois_are_clipped_to_the_view():
    red = solid(40, 40, (255, 0, 0))
    draw = view([PasteDraw(0, 0.4, 1.0, 1.0)], jitter=((0.2, 0.2, 0.1, 0.1),))
    v = render_view(draw, GREY, [red], 0.3)
    assert v.boxes.tolist() == [[60, 60, 100, 100]]
    assert v.rois.tolist() == [[68, 68, 100, 100]]


def test_paste_blends_by_alpha():
    canvas = np.full((4, 4, 3), 100, np.uint8)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = [[255, 0], [128, 127]]
    mask = paste(canvas, rgba, 1, 1)
    assert canvas[1, 1].tolist() == [200] * 3
    assert canvas[1, 2].tolist() == [100] * 3
    assert canvas[2, 1].tolist() == [150] * 3  # (200*128 + 100*127 + 127) // 255
    assert mask.sum() == 2 and mask[1, 1] and mask[2, 1] and not mask[2, 2]
