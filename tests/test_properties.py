"""Property tests (hypothesis) for RoI jitter and flips: floors hold, RoIs stay in the view and on the
instance."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from codo_aug.geometry.boxes import box_iou, flip_boxes_horizontal, mask_to_box
from codo_aug.recipes.recipe import PasteDraw, ViewDraw
from codo_aug.render.layout import ViewRules, jitter_rois
from codo_aug.render.paint import render_view

unit = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
draws4 = st.tuples(unit, unit, unit, unit)


@st.composite
def box_in_view(draw, size=224):
    x1 = draw(st.integers(0, size - 2))
    y1 = draw(st.integers(0, size - 2))
    x2 = draw(st.integers(x1 + 1, size))
    y2 = draw(st.integers(y1 + 1, size))
    return np.array([[x1, y1, x2, y2]], np.float32)


@settings(max_examples=300, deadline=None)
@given(box=box_in_view(), d=draws4, floor=st.floats(0.1, 1.0))
def test_iou_jitter_keeps_the_floor_contains_the_box_and_stays_in_view(box, d, floor):
    roi = jitter_rois(box, np.array([d], np.float32), "iou", floor, 224)
    assert box_iou(box, roi)[0, 0] >= floor - 1e-4
    assert (roi[0, :2] <= box[0, :2] + 1e-3).all() and (roi[0, 2:] >= box[0, 2:] - 1e-3).all()
    assert (roi >= 0).all() and (roi <= 224).all()


@settings(max_examples=300, deadline=None)
@given(box=box_in_view(), d=st.tuples(*[st.floats(-0.1, 0.1)] * 4))
def test_relative_jitter_stays_in_view_and_on_the_box(box, d):
    roi = jitter_rois(box, np.array([d], np.float32), "relative", 0.5, 224)
    assert (roi >= 0).all() and (roi <= 224).all() and (roi[0, 2:] > roi[0, :2]).all()
    assert box_iou(box, roi)[0, 0] >= 0.5


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.1, 0.9), u=unit, v=unit, d=draws4, trunc=st.floats(0.0, 0.5),
    w=st.integers(4, 60), h=st.integers(4, 60), mode=st.sampled_from(["iou", "relative", "none"]),
)
def test_flipped_views_keep_boxes_and_rois_on_the_instance(scale, u, v, d, trunc, w, h, mode):
    cut = np.zeros((h, w, 4), np.uint8)
    cut[..., 0] = 255
    cut[h // 4:, :, 3] = 255  # an object with a transparent top strip
    rules = ViewRules(min_visibility=0.0, max_truncation=trunc, iou_floor=0.5)
    deltas = tuple(x * 0.2 - 0.1 for x in d) if mode == "relative" else d
    bg = np.full((64, 64, 3), 30, np.uint8)
    draws = [ViewDraw(96, 0, (1.0, 0.0, 0.0), flip, (PasteDraw(0, scale, u, v),), mode, (deltas,))
             for flip in (False, True)]
    views = [render_view(draw, bg, [cut], rules) for draw in draws]
    plain, flipped = views
    assert plain.ids.tolist() == flipped.ids.tolist()
    if len(plain.ids) == 0:
        return
    assert np.array_equal(flipped.masks, plain.masks[:, :, ::-1])
    assert np.allclose(flipped.boxes, flip_boxes_horizontal(plain.boxes, 96))
    assert np.allclose(flipped.rois, flip_boxes_horizontal(plain.rois, 96))
    for view in views:
        # the box is tight on the visible object
        assert np.array_equal(mask_to_box(view.masks[0]), view.boxes[0])
        red = view.image[view.masks[0]]
        assert (red[:, 0] > 128).all()  # and the object is where the mask says (alpha > 127: mostly red)
        assert (view.rois >= 0).all() and (view.rois <= 96).all()
        if mode == "iou":
            assert box_iou(view.boxes, view.rois)[0, 0] >= 0.5 - 1e-4
