"""Box and placement kernels against hand-computed values."""

import math

import numpy as np
import pytest

from codo_aug.geometry.boxes import (box_iou, clip_boxes, flip_boxes_horizontal, jitter_boxes_relative,
                                    mask_to_box)
from codo_aug.geometry.placement import crop_rect, fit_longest, place


def test_mask_to_box_uses_pixel_edges():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True  # rows 2..4, cols 3..8
    assert mask_to_box(mask).tolist() == [3, 2, 9, 5]
    single = np.zeros((4, 4), bool)
    single[1, 3] = True
    assert mask_to_box(single).tolist() == [3, 1, 4, 2]
    assert mask_to_box(np.zeros((4, 4), bool)) is None


def test_flip_boxes_mirrors_about_centre_and_is_an_involution():
    boxes = np.array([[0, 20, 40, 40], [10, 0, 15, 5]], np.float32)
    flipped = flip_boxes_horizontal(boxes, 100)
    assert flipped.tolist() == [[60, 20, 100, 40], [85, 0, 90, 5]]
    assert np.array_equal(flip_boxes_horizontal(flipped, 100), boxes)


def test_jitter_relative_moves_corner_and_size_by_fractions_of_the_box():
    boxes = np.array([[10, 20, 50, 40]], np.float32)  # w 40, h 20
    out = jitter_boxes_relative(boxes, np.array([[0.1, -0.1, 0.2, -0.5]], np.float32))
    # x1 = 10 + 4, y1 = 20 - 2, w = 48, h = 10
    assert out.tolist() == [[14, 18, 62, 28]]
    assert jitter_boxes_relative(boxes, np.zeros((1, 4), np.float32)).tolist() == boxes.tolist()


def test_clip_and_iou():
    assert clip_boxes(np.array([[-5, 3, 120, 90]], np.float32), 100, 80).tolist() == [[0, 3, 100, 80]]
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert box_iou(a, b)[0].tolist() == pytest.approx([50 / 150, 0.0])


def test_crop_rect_area_aspect_and_position():
    # area 0.25 of 400x300 with aspect 1 -> 173.2 x 173.2 -> 173 x 173
    x, y, w, h = crop_rect(400, 300, 0.25, 0.0, 0.0, 1.0)
    assert (w, h) == (173, 173) and (x, y) == (0, 300 - 173)
    # aspect 4 on a 100x100 image: 100 x 25 wanted for area 0.25 -> fits exactly
    assert crop_rect(100, 100, 0.25, math.log(4.0), 0.5, 0.5) == (0, 38, 100, 25)
    # too wide to fit: shrunk keeping aspect 4 -> 100 x 25 for area 1.0 (asks 200x50)
    assert crop_rect(100, 100, 1.0, math.log(4.0), 0.0, 0.0)[2:] == (100, 25)


def test_fit_longest_and_place():
    assert fit_longest(200, 100, 50) == (50, 25)
    assert fit_longest(30, 90, 45) == (15, 45)
    assert place(100, 100, 40, 20, 0.0, 0.0) == (0, 0)
    assert place(100, 100, 40, 20, 1.0, 1.0) == (60, 80)
    assert place(100, 100, 40, 20, 0.5, 0.25) == (30, 20)
