"""Cutout modes: ILSVRC/VOC xml boxes, GrabCut seeded by a box, forced rects, and size filters."""


import numpy as np
import pytest
from PIL import Image

from codo_aug import SynthConfig, Synthesizer, open_source
from codo_aug.sources.cutout import grabcut
from codo_aug.sources.folder import read_voc_boxes

VOC_XML = """<annotation><size><width>120</width><height>90</height></size>
<object><name>n01</name><bndbox><xmin>21</xmin><ymin>11</ymin><xmax>60</xmax><ymax>40</ymax></bndbox></object>
<object><name>n01</name><bndbox><xmin>71</xmin><ymin>51</ymin><xmax>100</xmax><ymax>80</ymax></bndbox></object>
</annotation>"""


def disc_image(w: int = 120, h: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """A textured green field with a red disc (radius 18) at (60, 45), and the disc's mask."""
    rng = np.random.default_rng(0)
    img = (np.dstack([np.full((h, w), 40), np.full((h, w), 160), np.full((h, w), 60)])
           + rng.normal(0, 8, (h, w, 3)))
    yy, xx = np.mgrid[:h, :w]
    disc = (xx - 60) ** 2 + (yy - 45) ** 2 <= 18 ** 2
    img[disc] = (220, 40, 40) + rng.normal(0, 8, (int(disc.sum()), 3))
    return np.clip(img, 0, 255).astype(np.uint8), disc


def test_voc_boxes_are_zero_based_pixel_edges(tmp_path):
    (tmp_path / "a.xml").write_text(VOC_XML)
    assert read_voc_boxes(tmp_path / "a.xml") == [(20.0, 10.0, 60.0, 40.0), (70.0, 50.0, 100.0, 80.0)]


def test_imagenet_items_follow_xml_boxes_beside_or_in_the_ilsvrc_layout(tmp_path):
    data = tmp_path / "ILSVRC" / "Data" / "train"
    ann = tmp_path / "ILSVRC" / "Annotations" / "train"
    for cls, name in (("n01", "x"), ("n02", "y")):
        (data / cls).mkdir(parents=True)
        Image.fromarray(disc_image()[0]).save(data / cls / f"{name}.JPEG")
    (ann / "n01").mkdir(parents=True)
    (ann / "n01" / "x.xml").write_text(VOC_XML)
    (data / "n02" / "y.xml").write_text("<annotation><object><bndbox><xmin>oops")
    src = open_source(f"imagenet:{data}", "instances")
    assert [(it.label, it.box) for it in src.items] == [
        ("n01", (20.0, 10.0, 60.0, 40.0)), ("n01", (70.0, 50.0, 100.0, 80.0)), ("n02", None)]
    assert dict(src.skipped.counts) == {"bad-xml": 1}
    rect = (1.0, 0.0, 0.0, 0.0)
    assert src.cutout(0, rect, "box").shape == (30, 40, 4)
    assert src.cutout(1, rect, "auto").shape == (30, 30, 4)
    assert src.cutout(0, rect, "rect").shape == (90, 90, 4)  # the drawn rect: area 1, aspect 1 -> 90 x 90
    assert src.cutout(2, rect, "box").shape == (90, 90, 4)  # no box: the rect


def test_grabcut_finds_the_object_in_its_box_and_is_repeatable():
    img, disc = disc_image()
    box = (36, 21, 84, 69)  # the disc's box (42..78) with some field around it
    cut = grabcut(img, box)
    # cropped to the disc: about its 37 x 37 box, its area, and the box corners (outside the disc) clear
    assert abs(cut.shape[0] - 37) <= 3 and abs(cut.shape[1] - 37) <= 3, cut.shape
    area = int((cut[:, :, 3] > 0).sum())
    assert abs(area - int(disc.sum())) < 0.15 * disc.sum(), (area, int(disc.sum()))
    assert cut[0, 0, 3] == cut[0, -1, 3] == cut[-1, 0, 3] == cut[-1, -1, 3] == 0
    assert (cut[:, :, 0][cut[:, :, 3] > 0] > 150).mean() > 0.95  # what it kept is the red disc
    assert np.array_equal(grabcut(img, box), cut)


def test_grabcut_falls_back_to_the_box_when_there_is_no_background_to_learn_from():
    img, _ = disc_image()
    assert (grabcut(img, (0, 0, 120, 90))[:, :, 3] == 255).all()


def test_grabcut_mode_renders_samples(tmp_path):
    (tmp_path / "cls").mkdir()
    Image.fromarray(disc_image()[0]).save(tmp_path / "cls" / "d.jpg")
    (tmp_path / "cls" / "d.xml").write_text(VOC_XML.replace("<xmin>21", "<xmin>37")
                                            .replace("<ymin>11", "<ymin>22")
                                            .replace("<xmax>60", "<xmax>84").replace("<ymax>40", "<ymax>69"))
    cfg = SynthConfig(cutout="grabcut", instances_per_sample=(1, 1))
    synth = Synthesizer(open_source(f"imagenet:{tmp_path}", "instances"),
                        open_source("sample", "backgrounds"), cfg)
    s = synth.sample(0)
    assert all(len(v.ids) >= 1 for v in s.views)


def test_min_instance_side_skips_small_files_at_open_and_small_cutouts_at_render(tmp_path):
    Image.fromarray(disc_image(12, 9)[0]).save(tmp_path / "small.png")
    Image.fromarray(disc_image()[0]).save(tmp_path / "big.png")
    src = open_source(f"folder:{tmp_path}", "instances", min_side=10)
    assert [it.path for it in src.items] == ["big.png"] and dict(src.skipped.counts) == {"too-small": 1}
    with pytest.raises(Exception, match="too-small"):
        src.cutout(0, (0.05, 0.0, 0.0, 0.0), "rect", min_side=40)  # a 5 % rect of 120x90 is 23 px wide
