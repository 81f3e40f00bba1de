"""Shard views decoded and augmented on a torch device (codo_train.device_decode) against the CPU path (cv2
decode, codo_aug's apply_photo), on the CPU with real photos: the same pixels and the same draws.

Measured on this machine (opencv 5.1, torchvision 0.29): torchvision's JPEG decode equals cv2's (both
libjpeg-turbo; max difference 0); brightness, contrast, saturation, greyscale and solarize equal
apply_photo's to the bit; hue differs by 1 level on about 1 pixel in 100,000 (float rounding in cv2's HSV
-> RGB), blur on about 1 in 100,000 too (float sums in another order than cv2's). The bounds below leave a
little room for other builds of either library."""

import io
import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from codo_aug import ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.recipes.photometric import SOCO_FIRST, SOCO_OTHER, sample_photo
from codo_aug.recipes.recipe import PhotoDraw
from codo_aug.render.photometric import apply_photo
from codo_aug.shards.format import decode_image, decode_record, encode_image
from codo_aug.shards.reader import BadRecord, expand_shards, iter_members
from codo_train.device_decode import apply_photo_tensor, decode_views

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")
SCRATCH = DATA / "scratch"
CPU = torch.device("cpu")
#: (max, mean) absolute difference in levels allowed between the two paths' pixels.
DECODE_BOUND = (2, 0.05)
OP_BOUND = (1, 0.001)
#: Each op alone, at strengths SoCo draws (and beyond, for the blur).
OPS = {
    "brightness up": PhotoDraw(brightness=1.37), "brightness down": PhotoDraw(brightness=0.62),
    "contrast up": PhotoDraw(contrast=1.33), "contrast down": PhotoDraw(contrast=0.64),
    "saturation up": PhotoDraw(saturation=1.2), "saturation down": PhotoDraw(saturation=0.81),
    "hue forward": PhotoDraw(hue=0.093), "hue back": PhotoDraw(hue=-0.061), "hue tiny": PhotoDraw(hue=0.003),
    "greyscale": PhotoDraw(grayscale=True), "solarize": PhotoDraw(solarize=True),
    "blur 0.1": PhotoDraw(blur_sigma=0.1), "blur 0.77": PhotoDraw(blur_sigma=0.77),
    "blur 2.0": PhotoDraw(blur_sigma=2.0), "blur 3.3": PhotoDraw(blur_sigma=3.3),
    "everything": PhotoDraw(0.8, 1.3, 0.7, 0.05, (3, 1, 0, 2), True, 1.2, True),
}


def needs_photos() -> None:
    if not (DATA / ".complete").is_file():
        pytest.skip(f"real test data not in {DATA} (no .complete): run scripts/fetch_test_data.sh")


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """12x224x224x3 uint8: the centres of scratch photos of the real test data."""
    needs_photos()
    crops = []
    for path in sorted(SCRATCH.glob("*/*.jpg"))[::2][:12]:
        rgb = decode_image(path.read_bytes())
        top, left = (rgb.shape[0] - 224) // 2, (rgb.shape[1] - 224) // 2
        crops.append(rgb[top:top + 224, left:left + 224])
    return np.stack(crops)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> str:
    """6 samples pasted on the scratch photos, stored without photometrics, in 2 shards."""
    needs_photos()
    out = tmp_path_factory.mktemp("device") / "s"
    run_synth(SynthJob(out=out, num_samples=6, shard_size=3, seed=4, backgrounds=f"folder:{SCRATCH}",
                       config=SynthConfig(photometric="none")))
    return str(out)


def tensors(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def assert_close(got: torch.Tensor, want: np.ndarray, bound: tuple[int, float]) -> None:
    diff = np.abs(got.permute(0, 2, 3, 1).numpy().astype(int) - want)
    assert diff.max() <= bound[0] and diff.mean() <= bound[1], (diff.max(), diff.mean())


def dataset(shards: str, **kw) -> ShardDataset:
    return ShardDataset(shards, rank=0, world_size=1, shuffle=0, seed=9, **kw)


def test_encoded_records_decode_to_the_cpu_pixels(shards):
    """Both decoders are libjpeg-turbo: equal on this machine; a swapped channel order is ~28 levels off."""
    encoded, decoded = list(dataset(shards, pixels=False)), list(dataset(shards))
    assert [r.key for r in encoded] == [r.key for r in decoded]
    for rec, ref in zip(encoded, decoded):
        assert rec.photo is None and ref.photo is None
        for view, want in zip(rec.views, ref.views):
            assert view.image.ndim == 1 and view.masks is None and want.masks is not None
            assert np.array_equal(view.boxes, want.boxes) and np.array_equal(view.rois, want.rois)
            assert np.array_equal(view.ids, want.ids)
    for j in range(3):
        images = decode_views([r.views[j].image for r in encoded], CPU)
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        assert_close(images, np.stack([r.views[j].image for r in decoded]), DECODE_BOUND)


def test_png_members_decode_exactly_in_their_place(photos):
    members = [encode_image(photos[0], "png", 0), encode_image(photos[1], "jpg", 95),
               encode_image(photos[2], "png", 0)]
    images = decode_views([np.frombuffer(m, np.uint8) for m in members], CPU)
    assert torch.equal(images[0], tensors(photos[:1])[0]) and torch.equal(images[2], tensors(photos[2:3])[0])
    assert_close(images[1:2], decode_image(members[1])[None], DECODE_BOUND)
    small = np.frombuffer(encode_image(photos[0, :100, :100], "jpg", 95), np.uint8)
    with pytest.raises(ValueError, match="do not stack"):
        decode_views([np.frombuffer(members[0], np.uint8), small], CPU)


@pytest.mark.parametrize("name", OPS)
def test_each_op_matches_apply_photo(photos, name):
    draw = OPS[name]
    want = np.stack([apply_photo(p, draw) for p in photos])
    assert_close(apply_photo_tensor(tensors(photos), [draw] * len(photos)), want, OP_BOUND)


def test_every_image_gets_its_own_draw_and_identities_are_left_alone(photos):
    draws = [PhotoDraw()] + list(OPS.values())
    images = tensors(photos[:len(draws)])
    draws = draws[:len(images)]
    got = apply_photo_tensor(images, draws)
    assert torch.equal(got[0], images[0])
    assert_close(got, np.stack([apply_photo(p, d) for p, d in zip(photos, draws)]), OP_BOUND)
    assert apply_photo_tensor(images, [PhotoDraw(order=(2, 0, 1, 3))] * len(images)) is images
    with pytest.raises(ValueError, match="draws for images of shape"):
        apply_photo_tensor(images, draws[:1])


def test_encoded_records_carry_the_draws_the_cpu_path_applies(shards):
    """Record.photo holds the very draws (applied by cv2, the jittered CPU images come out bit for bit);
    applied on the device path to its decoded pixels, they give the CPU path's images to OP_BOUND."""
    plain, jittered = list(dataset(shards)), list(dataset(shards, photometric="soco"))
    encoded = dataset(shards, pixels=False, photometric="soco")
    records = list(encoded)
    for rec, bare, want in zip(records, plain, jittered):
        assert len(rec.photo) == 3 and want.photo is None
        for j, draw in enumerate(rec.photo):
            assert np.array_equal(apply_photo(bare.views[j].image, draw), want.views[j].image)
    for j in range(3):
        images = decode_views([r.views[j].image for r in records], CPU)
        got = apply_photo_tensor(images, [r.photo[j] for r in records])
        assert_close(got, np.stack([r.views[j].image for r in jittered]), OP_BOUND)
    encoded.set_epoch(1)
    assert [r.photo for r in encoded] != [r.photo for r in records]


def test_equal_in_distribution_over_soco_draws(photos):
    """Per-channel mean and std over 200 SoCo draws (112-pixel crops) agree within 0.01 levels."""
    rng = np.random.default_rng(0)
    crops = np.stack([cv2.resize(p, (112, 112), interpolation=cv2.INTER_AREA) for p in photos])
    picks = crops[np.arange(200) % len(crops)]
    draws = [sample_photo(rng, SOCO_FIRST if k % 2 else SOCO_OTHER, 112) for k in range(200)]
    cpu = np.stack([apply_photo(p, d) for p, d in zip(picks, draws)]).astype(np.float64)
    device = apply_photo_tensor(tensors(picks), draws).permute(0, 2, 3, 1).numpy().astype(np.float64)
    assert np.abs(cpu.mean(axis=(0, 1, 2)) - device.mean(axis=(0, 1, 2))).max() < 0.01
    assert np.abs(cpu.std(axis=(0, 1, 2)) - device.std(axis=(0, 1, 2))).max() < 0.01
    assert np.abs(cpu - device).mean() <= OP_BOUND[1]


def rewrite(path: Path, changes: dict[str, bytes | None]) -> None:
    """A tar with members replaced (bytes) or left out (None)."""
    with tarfile.open(path) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            data = changes.get(name, data)
            if data is not None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_bad_records_stay_bad_without_pixels(tmp_path):
    out = tmp_path / "s"
    run_synth(SynthJob(out=out, num_samples=4, shard_size=4, seed=1,
                       config=SynthConfig(view_sizes=(48, 32), photometric="none")))
    rewrite(out / "codo-000000.tar", {"000000001.view0.jpg": b"not a jpeg", "000000002.json": b"{garbled",
                                      "000000003.view1.jpg": None})
    for kw in ({}, {"pixels": False, "photometric": "soco"}):  # records judged one by one, not by sha256
        ds = ShardDataset(str(out), rank=0, world_size=1, shuffle=0, verify_shards=False, **kw)
        items = list(ds.records())
        reasons = [item.reason if isinstance(item, BadRecord) else None for item in items]
        assert reasons == [None, "the view0 image member does not decode", "the .json member does not parse "
                           "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
                           "no view1 image member"]


def test_encoded_views_need_their_size(tmp_path):
    out = tmp_path / "s"
    run_synth(SynthJob(out=out, num_samples=1, config=SynthConfig(view_sizes=(32, 32), photometric="none")))
    key, members = next(iter_members(expand_shards(str(out))[0]))
    meta = json.loads(members["json"])
    meta["views"][0]["size"] = "32"
    members["json"] = json.dumps(meta).encode()
    assert decode_record(key, members).views[0].image.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="view0 has no positive integer 'size' \\(it is '32'\\)"):
        decode_record(key, members, pixels=False)


def test_encoded_views_whose_header_disagrees_with_their_size_are_bad(tmp_path):
    """The worker reads each member's own header (JPEG SOF, PNG IHDR), so a view of another size is a bad
    record there, as on the CPU path, not an error in the trainer's step."""
    out = tmp_path / "s"
    run_synth(SynthJob(out=out, num_samples=1, config=SynthConfig(view_sizes=(32, 32), photometric="none")))
    key, members = next(iter_members(expand_shards(str(out))[0]))
    meta = json.loads(members["json"])
    meta["views"][1]["size"] = 48
    members["json"] = json.dumps(meta).encode()
    with pytest.raises(ValueError, match="the view1 image member's header says 32x32, its JSON size 48"):
        decode_record(key, members, pixels=False)
