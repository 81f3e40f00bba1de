"""Prepared sources (`codo-aug prepare`, `prepared:DIR`) on the real test data: the size rule by hand,
stored pixels against the original source's, recipes and samples against the original files, the
store's bytes under workers, resume and nodes, bad files, and the CLI."""

import json
import os
import pickle
import shutil
import socket
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from cli.aug import app
from codo_aug import CoDoDataset, InputError, SynthConfig, Synthesizer, open_source
from codo_aug.geometry.placement import crop_rect
from codo_aug.render.layout import view_cutout
from codo_aug.prepare import JOB_FILE, PrepareJob, run_prepare
from codo_aug.sources import prepared
from codo_aug.sources.prepared import MANIFEST, PreparedSource
from codo_aug.sources.decode import BadImage
from codo_aug.sources.sizing import SizeRule, scaled_size

from .helpers import cli

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")
pytestmark = pytest.mark.skipif(not (DATA / "tuxpaint").is_dir(), reason="real test data not cached")
#: A few random rects (area, log_ratio, u, v) as recipes draw them.
RECTS = [(0.2, 0.0, 0.5, 0.5), (0.7, 0.5, 0.1, 0.9), (1.0, -0.3, 0.0, 1.0)]


def copy_files(src: Path, dst: Path, n: int, pattern: str) -> Path:
    """The first `n` files of `src` matching `pattern` (sorted), copied into `dst` keeping their folders."""
    for path in sorted(src.rglob(pattern))[:n]:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dst


@pytest.fixture
def stamps(tmp_path) -> Path:
    """20 Tux Paint stamps (PNG with alpha) in their class folders."""
    return copy_files(DATA / "tuxpaint", tmp_path / "stamps", 20, "*.png")


@pytest.fixture
def photos(tmp_path) -> Path:
    """12 Scratch backdrops (480x360 JPEG)."""
    return copy_files(DATA / "scratch", tmp_path / "photos", 12, "*.jpg")


def prepare(spec: str, role: str, out: Path, **kw) -> PreparedSource:
    report = run_prepare(PrepareJob(spec, role, out, **kw))
    assert report.manifest is not None
    return open_source(f"prepared:{out}", role)


def store_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def resized(image: np.ndarray, scale: float) -> np.ndarray:
    size = scaled_size(image.shape[1], image.shape[0], scale)
    return image if size == image.shape[1::-1] else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def test_size_rule_by_hand():
    rule = SizeRule.from_config(SynthConfig())
    # smallest square crop of a 480x360 background: sqrt(0.3 * 480 * 360) = 227.68 px -> 224 / 227.68
    assert scaled_size(480, 360, rule.background_scale(480, 360)) == (473, 355)
    assert crop_rect(473, 355, 0.3, 0.0, 0.5, 0.5)[2] >= 224  # the smallest crop still covers the view
    small = SizeRule.from_config(SynthConfig(view_sizes=(112, 96)))
    assert scaled_size(480, 360, small.background_scale(480, 360)) == (237, 178)
    # a 1000x100 strip: the crop is capped by its height (100 px): it keeps 224 px -> never enlarged
    assert rule.background_scale(1000, 100) == 1.0
    # largest paste 224 * 1.6 = 358.4 px; 500x300 uncropped: 358.4 / 500
    assert scaled_size(500, 300, rule.instance_scale(500, 300, crops=False, whole=False)) == (359, 216)
    # a view crop of area 0.2 of 1000x600 at aspect 1: sqrt(0.2 * 600000) = 346.4 px < 358.4: kept
    assert scaled_size(1000, 600, rule.instance_scale(1000, 600, crops=True, whole=False)) == (1000, 600)
    # a 2000x400 box: the square crop is capped by the height at sqrt(0.2 * 800000) = 400 px -> 358.4 / 400
    assert scaled_size(2000, 400, rule.instance_scale(2000, 400, crops=True, whole=False)) == (1792, 359)
    # a whole 4000x1000 image: the rect of area 0.2 at aspect 1 is sqrt(800000) = 894.4 px a side (at 1/2
    # it is 500x1000 px, at 2 1264.9x632.5); 1 px more for the rect placed on the original:
    # 359.4 / 894.4 = 0.4018
    assert scaled_size(4000, 1000, rule.instance_scale(4000, 1000, crops=False, whole=True)) == (1608, 402)
    # 4000x2000 cut by the rect, then by a view crop: 0.2 * 0.2 * 8e6 = 320000, sqrt 565.7 px at aspects 1
    # (the rect at 1/2, 2 gives 894.4x1788.9, whose crop at 1 is 565.7 too); 4/3 px more (the rect's
    # 1 px carried into the view crop's longer side at aspect 4/3): 359.73 / 565.69 = 0.6359
    assert scaled_size(4000, 2000, rule.instance_scale(4000, 2000, crops=True, whole=True)) == (2544, 1272)
    assert rule.instance_scale(300, 200, crops=False, whole=False) == 1.0
    capped = SizeRule.from_config(SynthConfig(), max_side=100)
    assert scaled_size(400, 200, capped.instance_scale(400, 200, True, True)) == (100, 50)
    assert scaled_size(480, 360, capped.background_scale(480, 360)) == (100, 75)


@pytest.mark.parametrize("view_crop", ["on", "off"])
def test_the_largest_paste_never_needs_more_pixels_than_stored(view_crop, tmp_path):
    """Long cutouts (alpha) and long whole images (cut by the rect at use), over many draws of the rect
    and the view crop: the stored crop's longer side is at least the largest paste (358 px), or the
    original crop's when that is smaller."""
    cfg = SynthConfig(view_crop=view_crop)
    sizes = {"a/wide.png": (2000, 400), "a/tall.png": (500, 2400), "b/wide.jpg": (6000, 1500),
             "b/tall.jpg": (1500, 4500)}
    for name, (w, h) in sizes.items():
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        channels = 4 if name.endswith(".png") else 3
        cv2.imwrite(str(tmp_path / "src" / name), np.full((h, w, channels), 200, np.uint8))
    store = prepare(f"folder:{tmp_path / 'src'}", "instances", tmp_path / "store", config=cfg)
    assert all(max(store.pixels(i).shape) < max(sizes[it.path]) for i, it in enumerate(store.items))
    rng = np.random.default_rng(0)
    largest = round(max(cfg.view_sizes) * cfg.scale[1])
    for i, item in enumerate(store.items):
        crops = cfg.crops_views(store.rectangular(i))
        for _ in range(300):
            rect = (rng.uniform(0.2, 0.21), rng.uniform(np.log(0.5), np.log(2.0)), rng.random(), rng.random())
            crop = (rng.uniform(0.2, 0.21), rng.uniform(np.log(3 / 4), np.log(4 / 3)), rng.random(),
                    rng.random()) if crops else ()
            orig = sizes[item.path] if item.cutout == "alpha" else crop_rect(*sizes[item.path], *rect)[2:]
            if crop:
                orig = crop_rect(*orig, *crop)[2:]
            stored = view_cutout(store.cutout(i, rect), crop).shape[:2]
            assert max(stored) >= min(largest, max(orig)), (item.path, rect, crop, stored, orig)


def test_stored_pixels_are_the_original_cutouts_and_backgrounds_resized(stamps, photos, tmp_path):
    cfg = SynthConfig(view_sizes=(96, 64))
    rule = SizeRule.from_config(cfg)
    orig = open_source(f"folder:{stamps}", "instances", cfg.min_instance_side)
    store = prepare(f"folder:{stamps}", "instances", tmp_path / "inst", config=cfg)
    assert [it.path for it in store.items] == [it.path for it in orig.items]
    assert store.labels == orig.labels and store.cut_by_counts() == orig.cut_by_counts() == {
        "box": 0, "mask": 20, "rect": 0}
    shrunk = 0
    for i in range(len(orig)):
        cut = orig.cutout(i, RECTS[0])
        expected = resized(cut, rule.instance_scale(cut.shape[1], cut.shape[0], False, False))
        got = store.cutout(i, RECTS[i % 3], min_side=cfg.min_instance_side)
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable
        shrunk += got.shape != cut.shape
    assert shrunk > 10  # 96 * 1.6 = 154 px: most stamps are larger
    bg_orig = open_source(f"folder:{photos}", "backgrounds", 32)
    bgs = prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg", config=cfg)
    for i in range(len(bg_orig)):
        image = bg_orig.background(i)
        want = resized(image, rule.background_scale(480, 360))
        np.testing.assert_array_equal(bgs.background(i, 96, 0.3), want)
    assert bgs.background(0).shape == (152, 203, 3)  # 96 / sqrt(0.3 * 480 * 360) = 0.4216


def test_whole_images_are_cut_by_the_rect_at_use(photos, tmp_path):
    cfg = SynthConfig(view_sizes=(112, 112), scale=(0.3, 1.0))
    orig = open_source(f"folder:{photos}", "instances", 8)
    store = prepare(f"folder:{photos}", "instances", tmp_path / "inst", config=cfg)
    assert store.cut_by_counts()["rect"] == len(store) == len(orig)
    assert [store.rectangular(i, "auto") for i in range(len(store))] == [True] * len(store)
    # 112 / sqrt(0.2) / sqrt(0.2) = 560 px >= 480: kept whole, so the rect cut is the original's exactly
    for i in range(len(orig)):
        for rect in RECTS:
            np.testing.assert_array_equal(store.cutout(i, rect), orig.cutout(i, rect))
    small = prepare(f"folder:{photos}", "instances", tmp_path / "small", config=cfg, max_side=240)
    for rect in RECTS:
        cut, want = small.cutout(0, rect), orig.cutout(0, rect)
        assert abs(cut.shape[0] - want.shape[0] / 2) <= 1 and abs(cut.shape[1] - want.shape[1] / 2) <= 1
        half = cv2.resize(want, cut.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(cut.astype(int) - half).mean() < 6


def test_coco_masks_are_cut_when_prepared(tmp_path):
    spec = f"coco:{DATA / 'labelme_coco'}"
    orig = open_source(spec, "instances", 8)
    store = prepare(spec, "instances", tmp_path / "coco")
    assert len(store) == len(orig) and store.labels == orig.labels
    for i in range(len(orig)):
        cut = orig.cutout(i, RECTS[0])
        scale = SizeRule.from_config(SynthConfig()).instance_scale(cut.shape[1], cut.shape[0], False, False)
        np.testing.assert_array_equal(store.cutout(i, RECTS[1]), resized(cut, scale))


def test_samples_from_a_store_match_those_from_the_files(stamps, photos, tmp_path):
    cfg = SynthConfig(view_sizes=(128, 128, 64))
    files = Synthesizer.from_specs(f"folder:{stamps}", f"folder:{photos}", cfg, seed=3)
    prepare(f"folder:{stamps}", "instances", tmp_path / "inst", config=cfg)
    prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg", config=cfg)
    store = Synthesizer.from_specs(f"prepared:{tmp_path / 'inst'}", f"prepared:{tmp_path / 'bg'}", cfg,
                                   seed=3)
    assert [store.recipe(i) for i in range(40)] == [files.recipe(i) for i in range(40)]
    visible = [0, 0]
    for i in range(12):
        a, b = files.sample(i), store.sample(i)
        assert (a.labels, a.instance_files, a.background_files) == (b.labels, b.instance_files,
                                                                   b.background_files)
        for va, vb in zip(a.views, b.views):
            assert va.image.shape == vb.image.shape
            visible[0] += len(va.ids)
            visible[1] += len(vb.ids)
            common = np.intersect1d(va.ids, vb.ids)
            for k in common:
                box_a, box_b = va.boxes[list(va.ids).index(k)], vb.boxes[list(vb.ids).index(k)]
                assert np.abs(box_a - box_b).max() <= 4
    assert abs(visible[0] - visible[1]) <= 2


def test_workers_resume_and_nodes_give_the_same_store(stamps, tmp_path):
    spec = f"folder:{stamps}"
    run_prepare(PrepareJob(spec, "instances", tmp_path / "one", part_size=6))
    want = store_bytes(tmp_path / "one")
    assert sorted(want) == [f"part-0000{k}.{s}" for k in range(4) for s in ("bin", "json")] + [
        JOB_FILE, MANIFEST]
    run_prepare(PrepareJob(spec, "instances", tmp_path / "two", part_size=6, workers=2))
    assert store_bytes(tmp_path / "two") == want
    # resume: a part lost, another left half-written by a killed run
    (tmp_path / "one" / "part-00001.bin").unlink()
    (tmp_path / "one" / "part-00002.json").unlink()
    ended = subprocess.Popen(["true"])
    ended.wait()  # a run of this machine killed while writing part 3 and the manifest
    for name in ("part-00003.bin", MANIFEST):
        (tmp_path / "one" / f".{name}.{socket.gethostname()}.{ended.pid}.0123abcd.tmp").write_bytes(b"{")
    report = run_prepare(PrepareJob(spec, "instances", tmp_path / "one", part_size=6))
    assert (report.written, report.resumed, report.items) == (2, 2, 20)
    assert store_bytes(tmp_path / "one") == want
    rank0 = run_prepare(PrepareJob(spec, "instances", tmp_path / "nodes", part_size=6, num_nodes=2))
    assert rank0.manifest is None and "still missing" in rank0.summary()
    assert not (tmp_path / "nodes" / MANIFEST).exists()
    rank1 = run_prepare(PrepareJob(spec, "instances", tmp_path / "nodes", part_size=6, num_nodes=2,
                                   node_rank=1))
    assert rank1.manifest is not None and store_bytes(tmp_path / "nodes") == want


def test_a_file_that_fails_to_decode_is_skipped_and_counted(photos, tmp_path):
    bad = sorted(photos.rglob("*.jpg"))[3]
    bad.write_bytes(bad.read_bytes()[:700])  # the header passes the open-time probe, the pixels do not
    report = run_prepare(PrepareJob(f"folder:{photos}", "backgrounds", tmp_path / "bg", part_size=5))
    assert report.items == 11 and report.skips.counts == {"corrupt": 1}
    assert "1 file skipped (corrupt: 1)" in report.summary()
    store = open_source(f"prepared:{tmp_path / 'bg'}", "backgrounds")
    assert len(store) == 11 and str(bad.relative_to(photos)) not in [it.path for it in store.items]
    assert store.describe()["skipped"]["by_reason"] == {"corrupt": 1}
    assert store.skipped.reasons == {str(bad): "corrupt"}


def test_a_source_with_nothing_to_prepare_is_an_input_error_and_leaves_no_store(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    (bad / "t.jpg").write_bytes(cv2.imencode(".jpg", noise)[1].tobytes()[:700])  # the header alone passes
    with pytest.raises(InputError, match=r"no item of folder:.*/bad could be prepared: 1 file skipped "
                                         r"\(corrupt: 1\); nothing written"):
        prepare(f"folder:{bad}", "backgrounds", tmp_path / "store")
    assert list((tmp_path / "store").iterdir()) == []


def test_a_store_is_refused_where_it_would_be_wrong(stamps, photos, tmp_path):
    prepare(f"folder:{stamps}", "instances", tmp_path / "inst")
    store, bgs = open_source(f"prepared:{tmp_path / 'inst'}", "instances"), open_source(f"folder:{photos}",
                                                                                         "backgrounds")
    with pytest.raises(InputError, match="cut with cutout='auto'.*cutout='rect'"):
        Synthesizer(store, bgs, SynthConfig(cutout="rect"))  # when built, before any draw or file
    with pytest.raises(InputError, match="cut with cutout='auto'.*cutout='grabcut'"):
        CoDoDataset(f"prepared:{tmp_path / 'inst'}", f"folder:{photos}", config=SynthConfig(cutout="grabcut"))
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "shards"), "--instances",
                                      f"prepared:{tmp_path / 'inst'}", "--set", "cutout='rect'"])
    assert result.exit_code == 2 and "a cut cannot be redone" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "shards").exists()
    # 'box' cuts every item as 'auto' does (alpha, mask, xml box, else the rect): the store serves both
    assert Synthesizer(store, bgs, SynthConfig(cutout="box")).sample(0).labels == Synthesizer(
        open_source(f"folder:{stamps}", "instances"), bgs, SynthConfig(cutout="box")).sample(0).labels
    with pytest.raises(InputError, match="holds instances, not backgrounds"):
        open_source(f"prepared:{tmp_path / 'inst'}", "backgrounds")
    with pytest.raises(InputError, match="not a prepared store"):
        open_source(f"prepared:{photos}", "backgrounds")
    with pytest.raises(InputError, match="already a prepared store"):
        run_prepare(PrepareJob(f"prepared:{tmp_path / 'inst'}", "instances", tmp_path / "again"))
    result = CliRunner().invoke(app, ["preview", "--out", str(tmp_path / "p.png"), "--instances",
                                      f"prepared:{tmp_path / 'inst'}", "--backgrounds", f"folder:{photos}",
                                      "--set", "cutout='grabcut'"])
    assert result.exit_code == 2 and "a cut cannot be redone" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "inst" / "part-00000.json").unlink()
    with pytest.raises(InputError, match="the store is damaged"):
        open_source(f"prepared:{tmp_path / 'inst'}", "instances")


def test_open_maps_are_bounded(stamps, tmp_path, monkeypatch):
    """A map holds a file descriptor: a store of many parts keeps only the MAX_MAPS last used open."""
    want = prepare(f"folder:{stamps}", "instances", tmp_path / "one")
    store = prepare(f"folder:{stamps}", "instances", tmp_path / "many", part_size=1)
    monkeypatch.setattr(prepared, "MAX_MAPS", 4)

    def open_parts() -> int:
        return sum(os.path.realpath(f"/proc/self/fd/{fd}").startswith(str(tmp_path / "many"))
                   for fd in os.listdir("/proc/self/fd"))

    for _ in range(2):
        for i in range(len(store)):
            np.testing.assert_array_equal(store.cutout(i, RECTS[0]), want.cutout(i, RECTS[0]))
            assert open_parts() <= 4
    assert len(store) == 20 and open_parts() == 4


def test_a_store_sized_for_smaller_views_warns(stamps, photos, tmp_path, caplog):
    prepare(f"folder:{stamps}", "instances", tmp_path / "inst")
    prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg")
    specs = f"prepared:{tmp_path / 'inst'}", f"prepared:{tmp_path / 'bg'}"
    Synthesizer.from_specs(*specs, SynthConfig(view_sizes=(112, 96)))
    assert not caplog.records
    Synthesizer.from_specs(*specs, SynthConfig(view_sizes=(256, 128)))
    assert [r.getMessage().split(" was sized for ")[1] for r in caplog.records] == [
        "a paste of 358.4 px, the config asks for 409.6: its pixels are enlarged",
        "a view of 224 px, the config asks for 256: its pixels are enlarged"]


def test_a_damaged_store_is_a_one_line_input_error(photos, tmp_path):
    store = tmp_path / "bg"
    prepare(f"folder:{photos}", "backgrounds", store, codec="jpeg")
    blob = store / "part-00000.bin"
    pixels = blob.read_bytes()
    blob.write_bytes(bytes(len(pixels)))  # the size its index says, no JPEG in it
    with pytest.raises(InputError, match=f"prepared source: {blob} is damaged .*error") as bad:
        open_source(f"prepared:{store}", "backgrounds").background(0)
    assert "\n" not in str(bad.value)
    result = CliRunner().invoke(app, ["preview", "--out", str(tmp_path / "p.png"), "--backgrounds",
                                      f"prepared:{store}"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    blob.write_bytes(pixels)
    index = json.loads((store / "part-00000.json").read_text())
    del index["items"][2]["header"]
    (store / "part-00000.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match=f"prepared source: {store} is damaged \\(KeyError: 'header'\\)"):
        open_source(f"prepared:{store}", "backgrounds")
    manifest = json.loads((store / MANIFEST).read_text())
    del manifest["parts"]
    (store / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="is damaged \\(KeyError: 'parts'\\)"):
        open_source(f"prepared:{store}", "backgrounds")


def test_prepared_sources_feed_the_dataset_preview_and_synth(stamps, photos, tmp_path):
    prepare(f"folder:{stamps}", "instances", tmp_path / "inst")
    prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg")
    ds = CoDoDataset(f"prepared:{tmp_path / 'inst'}", f"prepared:{tmp_path / 'bg'}", length=4)
    sample = ds[1]
    copy = pickle.loads(pickle.dumps(ds))  # as DataLoader workers get it: the maps stay behind
    assert len(pickle.dumps(ds)) < 100_000 and copy[1].labels == sample.labels
    assert [v.image.shape[0] for v in sample.views] == [224, 224, 112]
    assert ds.synth.instances.describe()["prepared_from"]["kind"] == "folder"
    result = CliRunner().invoke(app, ["preview", "--out", str(tmp_path / "p.png"), "--num-samples", "2",
                                      "--instances", f"prepared:{tmp_path / 'inst'}",
                                      "--backgrounds", f"prepared:{tmp_path / 'bg'}"])
    assert result.exit_code == 0, result.output
    synth_args = ["synth", "--out", str(tmp_path / "shards"), "--num-samples", "4", "--instances",
                  f"prepared:{tmp_path / 'inst'}", "--backgrounds", f"prepared:{tmp_path / 'bg'}"]
    result = CliRunner().invoke(app, synth_args)
    assert result.exit_code == 0 and "wrote 4 samples in 1 shard(s)" in result.output, result.output
    again = CliRunner().invoke(app, synth_args)
    assert again.exit_code == 0 and "(1 already there)" in again.output, again.output
    run_prepare(PrepareJob(f"folder:{stamps}", "instances", tmp_path / "inst", codec="jpeg", overwrite=True))
    rebuilt = CliRunner().invoke(app, synth_args)  # the same items, other pixels: not the same job
    assert rebuilt.exit_code == 2 and "differs in: source_identity" in rebuilt.output, rebuilt.output


def test_jpeg_codec_is_close_and_keeps_alpha(stamps, photos, tmp_path):
    raw = prepare(f"folder:{stamps}", "instances", tmp_path / "raw")
    small = prepare(f"folder:{stamps}", "instances", tmp_path / "jpeg", codec="jpeg")
    size = {name: sum(p.stat().st_size for p in (tmp_path / name).glob("*.bin")) for name in ("raw", "jpeg")}
    assert size["jpeg"] < size["raw"] / 3
    for i in range(len(raw)):
        a, b = raw.cutout(i, RECTS[0]), small.cutout(i, RECTS[0])
        np.testing.assert_array_equal(a[:, :, 3], b[:, :, 3])
        assert np.abs(a[:, :, :3].astype(int) - b[:, :, :3]).mean() < 8
    raw = prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg-raw")
    small = prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg-jpeg", codec="jpeg")
    a, b = raw.background(0), small.background(0)
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 4


def test_cli_prepare(stamps, tmp_path):
    runner = CliRunner()
    out = tmp_path / "store"
    args = ["prepare", f"folder:{stamps}", "--role", "instances", "--out", str(out), "--part-size", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "prepared 20 instances in 3 part(s)" in result.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "(3 already there)" in again.output
    other = runner.invoke(app, [*args, "--max-side", "64"])
    assert other.exit_code == 2 and "differs in: rule" in other.output
    for setting, differs in (("view_crop='on'", "view_crop"), ("view_crop_ratio=[0.5, 2.0]", "rule")):
        other = runner.invoke(app, [*args, "--set", setting])
        assert other.exit_code == 2 and f"differs in: {differs})" in other.output, other.output
    assert runner.invoke(app, [*args, "--max-side", "64", "--overwrite"]).exit_code == 0
    assert max(open_source(f"prepared:{out}", "instances").pixels(0).shape[:2]) <= 64
    for bad in (["--role", "things"], ["--codec", "png"], ["--node-rank", "2", "--num-nodes", "2"]):
        result = runner.invoke(app, [*args[:2], "--out", str(tmp_path / "x"), "--role", "instances", *bad])
        assert result.exit_code == 2 and result.output.count("error:") == 1, result.output
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("mine")
    result = runner.invoke(app, [*args[:4], "--out", str(notes)])
    assert result.exit_code == 2 and "not a prepared store" in result.output
    help_text = runner.invoke(app, ["prepare", "--help"]).output
    assert "[default: raw]" in help_text and "[default: 1000]" in help_text


def test_a_larger_min_side_keeps_the_items_the_files_keep(stamps, tmp_path):
    """The file source judges an image's header size when it opens, the cut when it is used: so does
    the store (the stamps' cuts are smaller than their images)."""
    prepare(f"folder:{stamps}", "instances", tmp_path / "inst")
    for min_side, kept in ((60, 20), (150, 7)):
        store = open_source(f"prepared:{tmp_path / 'inst'}", "instances", min_side)
        files = open_source(f"folder:{stamps}", "instances", min_side)
        assert [it.path for it in store.items] == [it.path for it in files.items] and len(store) == kept
        assert store.skipped.reasons == files.skipped.reasons
        for i in range(len(files)):
            try:
                files.cutout(i, RECTS[0], min_side=min_side)
            except BadImage:
                with pytest.raises(BadImage, match="too-small"):
                    store.cutout(i, RECTS[0], min_side=min_side)


def test_a_larger_min_side_skips_small_items(photos, tmp_path):
    prepare(f"folder:{photos}", "backgrounds", tmp_path / "bg", )
    assert len(open_source(f"prepared:{tmp_path / 'bg'}", "backgrounds", 360)) == 12
    with pytest.raises(InputError, match="no usable backgrounds"):
        open_source(f"prepared:{tmp_path / 'bg'}", "backgrounds", 361)


def test_a_max_side_below_the_min_side_is_refused_as_the_job_is_made(tmp_path):
    with pytest.raises(InputError, match=r"invalid max_side=16: must be >= 32 \(min_background_side"):
        PrepareJob("sample", "backgrounds", tmp_path / "bg", max_side=16)
    assert PrepareJob("sample", "instances", tmp_path / "inst", max_side=16).max_side == 16  # >= 8
    with pytest.raises(InputError, match="invalid max_side=16: must be >= 20 \\(min_instance_side"):
        PrepareJob("sample", "instances", tmp_path / "inst", SynthConfig(min_instance_side=20), max_side=16)


@pytest.mark.slow
def test_codo_train_runs_on_prepared_sources(stamps, photos, tmp_path):
    for spec, role in ((f"folder:{stamps}", "instances"), (f"folder:{photos}", "backgrounds")):
        run_prepare(PrepareJob(spec, role, tmp_path / role))
    proc = cli("codo-train", "run", "--instances", f"prepared:{tmp_path / 'instances'}", "--backgrounds",
               f"prepared:{tmp_path / 'backgrounds'}", "--steps", "1", "--arch", "resnet18",
               "--batch-size", "2", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "trained 1 step," in proc.stderr


def test_xml_boxes_are_cut_when_prepared_and_grabcut_too(tmp_path):
    """An ImageNet layout of Scratch photos, with ILSVRC xml boxes beside all but the last image."""
    root = tmp_path / "train"
    for k, path in enumerate(sorted((DATA / "scratch").rglob("*.jpg"))[:4]):
        target = root / f"n0{k % 2}" / f"{path.stem}.JPEG"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if k < 3:
            target.with_suffix(".xml").write_text(
                "<annotation><object><name>n</name><bndbox><xmin>41</xmin><ymin>31</ymin><xmax>400</xmax>"
                "<ymax>300</ymax></bndbox></object></annotation>")
    spec = f"imagenet:{root}"
    files = open_source(spec, "instances", 8)
    assert [files.rect_image(i) is None for i in range(4)] == [True, True, True, False]
    assert all(files.rect_image(i, "rect") is not None for i in range(4))  # the box is not used
    np.testing.assert_array_equal(files.rect_image(3), files.cutout(3, (1.0, np.log(4 / 3), 0, 0))[:, :, :3])
    for cutout in ("auto", "grabcut"):
        cfg = SynthConfig(view_sizes=(64, 64), cutout=cutout)
        orig = open_source(spec, "instances", 8)
        store = prepare(spec, "instances", tmp_path / cutout, config=cfg)
        assert store.cut_by_counts() == orig.cut_by_counts() == {"box": 3, "mask": 0, "rect": 1}
        rectangular = [store.rectangular(i, cutout) for i in range(len(store))]
        assert rectangular == [orig.rectangular(i, cutout) for i in range(len(orig))]
        rule = SizeRule.from_config(cfg)
        for i in range(3):  # boxes: 359x269, shrunk when views crop them (below)
            cut = orig.cutout(i, RECTS[0], cutout)
            scale = rule.instance_scale(cut.shape[1], cut.shape[0], cfg.crops_views(rectangular[i]), False)
            np.testing.assert_array_equal(store.cutout(i, RECTS[1], cutout), resized(cut, scale))
        if cutout == "auto":
            # a view crop of 0.2 of 359x269 is sqrt(0.2 * 359 * 269) = 138.97 px at aspect 1: * 102.4 / 138.97
            assert store.pixels(0).shape == (199, 265, 4)
            # the whole 480x360 image: its smallest rect and view crop are 83.1 px < 102.4 + 4/3: kept whole,
            # so it is cut at use as the files are
            np.testing.assert_array_equal(store.cutout(3, RECTS[1]), orig.cutout(3, RECTS[1]))
        files = Synthesizer(orig, open_source(spec, "backgrounds"), cfg)
        assert [Synthesizer(store, files.backgrounds, cfg).recipe(i) for i in range(10)] == [
            files.recipe(i) for i in range(10)]
