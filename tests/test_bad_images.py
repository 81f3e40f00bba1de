"""Every source kind against every kind of awkward image file: converted correctly, or skipped with a
counted reason; never a traceback or a hang. Files are made by the tests."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codo_aug import InputError, SynthConfig, SynthJob, Synthesizer, open_source, run_synth
from codo_aug.sources.decode import MAX_PIXELS, decode
from codo_train import TrainConfig, train

KINDS = ("folder", "imagenet", "coco")
CFG = SynthConfig(instances_per_sample=(1, 1), min_visibility=0.0, photometric="none")


def photo(w: int = 96, h: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient plus noise, so JPEG keeps it recognisable."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    img = np.dstack([x, y, 255 - x]) + rng.normal(0, 4, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def exif_rotated() -> bytes:
    img = Image.fromarray(photo(96, 64))
    exif = img.getexif()
    exif[0x0112] = 6  # stored landscape, shown portrait (rotate 90 clockwise)
    return jpeg(img, exif=exif)


def rgba() -> bytes:
    arr = np.dstack([photo(96, 64), np.zeros((64, 96), np.uint8)])
    arr[16:48, 24:72, 3] = 255
    return png(Image.fromarray(arr, "RGBA"))


def palette() -> bytes:
    return png(Image.fromarray(photo(96, 64)).convert("P", palette=Image.Palette.ADAPTIVE, colors=32))


def sixteen_bit() -> bytes:
    arr = (np.linspace(0, 65535, 96 * 64).reshape(64, 96)).astype(np.uint16)
    return png(Image.fromarray(arr))


def huge() -> bytes:
    side = int(MAX_PIXELS ** 0.5) + 100  # a tiny file that would decode to > MAX_PIXELS pixels
    return png(Image.new("1", (side, side)))


#: name -> (file suffix, bytes maker, expected: ("ok", decoded RGB shape) or ("skip", reason))
CASES = {
    "corrupt": (".jpg", lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, ("skip", "unreadable")),
    "truncated": (".jpg", lambda: jpeg(Image.fromarray(photo()))[:700], ("skip", "corrupt")),
    "zero-byte": (".jpg", lambda: b"", ("skip", "zero-byte")),
    "cmyk": (".jpg", lambda: jpeg(Image.fromarray(photo()).convert("CMYK")), ("ok", (64, 96, 3))),
    "16-bit": (".png", sixteen_bit, ("ok", (64, 96, 3))),
    "grayscale": (".jpg", lambda: jpeg(Image.fromarray(photo()).convert("L")), ("ok", (64, 96, 3))),
    "palette": (".png", palette, ("ok", (64, 96, 3))),
    "rgba": (".png", rgba, ("ok", (64, 96, 3))),
    "exif-rotated": (".jpg", exif_rotated, ("ok", (96, 64, 3))),
    "tiny": (".jpg", lambda: jpeg(Image.fromarray(photo(5, 4))), ("skip", "too-small")),  # < 8 and < 32 px
    "huge": (".png", huge, ("skip", "too-large")),
}


def _stored_size(data: bytes) -> tuple[int, int]:
    try:
        return Image.open(io.BytesIO(data)).size
    except Exception:  # noqa: BLE001 - a broken file: the json still names it, as real sets do
        return 96, 64


def case_path(kind: str, root: Path, case: str) -> Path:
    folder = root / "images" if kind == "coco" else root / "cls" if kind == "imagenet" else root
    return folder / f"case{CASES[case][0]}"


def build(kind: str, root: Path, case: str) -> str:
    """A source of `kind` under `root` holding one good photo and the case file; returns its spec."""
    case_file = case_path(kind, root, case)
    case_file.parent.mkdir(parents=True, exist_ok=True)
    files = {case_file.parent / "good.jpg": jpeg(Image.fromarray(photo(seed=1))), case_file: CASES[case][1]()}
    for path, data in files.items():
        path.write_bytes(data)
    if kind != "coco":
        return f"{kind}:{root}"
    images, anns = [], []
    for k, (path, data) in enumerate(files.items()):
        w, h = _stored_size(data)
        images.append({"id": k, "file_name": path.name, "width": w, "height": h})
        x, y, bw, bh = w // 4, h // 4, max(1, w // 2), max(1, h // 2)
        anns.append({"id": k, "image_id": k, "category_id": 1, "iscrowd": 0, "area": bw * bh,
                     "bbox": [x, y, bw, bh], "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]]})
    (root / "instances.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                     "categories": [{"id": 1, "name": "thing"}]}))
    return f"coco:{root / 'instances.json'}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", list(CASES))
def test_source_kind_copes_with(kind, case, tmp_path):
    outcome, detail = CASES[case][2]
    spec = build(kind, tmp_path, case)
    inst = open_source(spec, "instances", min_side=CFG.min_instance_side)
    bgs = open_source(spec, "backgrounds", min_side=CFG.min_background_side)
    synth = Synthesizer(inst, bgs, CFG, seed=0)
    samples = [synth.sample(i) for i in range(12)]  # the case file is drawn with near certainty
    skipped = {**inst.skipped.counts, **bgs.skipped.counts, **synth.render_skips.counts}
    name = case_path(kind, tmp_path, case).name
    as_instance = any(f.endswith(name) for s in samples for f in s.instance_files)
    as_background = any(f.endswith(name) for s in samples for f in s.background_files)
    if outcome == "skip":
        assert skipped.get(detail, 0) >= 1, skipped
        assert not as_instance and not as_background
    else:
        assert not skipped, skipped
        assert as_instance and as_background
        out = decode(str(case_path(kind, tmp_path, case)))
        assert out.shape == detail and out.dtype == np.uint8
    for s in samples:
        assert [v.image.shape for v in s.views] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]


def test_converted_pixels_are_right(tmp_path):
    (tmp_path / "g16.png").write_bytes(sixteen_bit())
    g = decode(str(tmp_path / "g16.png"))
    assert g[0, 0].tolist() == [0, 0, 0] and g[-1, -1].tolist() == [255, 255, 255]
    (tmp_path / "rot.jpg").write_bytes(exif_rotated())
    upright = decode(str(tmp_path / "rot.jpg"))
    stored = decode(str(tmp_path / "rot.jpg"), exif=False)
    assert np.abs(upright.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 1.0
    (tmp_path / "cmyk.jpg").write_bytes(jpeg(Image.fromarray(photo()).convert("CMYK")))
    assert np.abs(decode(str(tmp_path / "cmyk.jpg")).astype(int) - photo().astype(int)).mean() < 12


def test_a_file_that_fails_late_is_replaced_the_same_way_everywhere(tmp_path):
    spec = build("folder", tmp_path, "truncated")
    def make() -> Synthesizer:
        return Synthesizer(open_source(spec, "instances"), open_source(spec, "backgrounds"), CFG, seed=0)

    warm, fresh = make(), make()
    for i in range(6):
        warm.sample(i)  # learns which file is broken
    for i in (5, 2):
        a, b = warm.sample(i), fresh.sample(i)
        assert a.instance_files == b.instance_files and a.background_files == b.background_files
        assert all(np.array_equal(x.image, y.image) for x, y in zip(a.views, b.views))
    assert fresh.render_skips.counts["corrupt"] == 1


def test_a_source_whose_files_all_fail_to_decode_is_an_input_error_before_anything_is_written(tmp_path):
    """The header check passes a truncated JPEG; synth renders sample 0 first, so the error comes before
    --out is made, and it counts what the scan refused (zero-byte, unreadable) with what failed later."""
    bad = tmp_path / "bad" / "a"
    bad.mkdir(parents=True)
    for name in ("zero", "corrupt", "truncated"):
        suffix, make, _ = CASES[name if name != "zero" else "zero-byte"]
        (bad / f"{name}{suffix}").write_bytes(make())
    said = ("no item of the backgrounds source (folder) could be used: 3 files skipped "
            "(corrupt: 1, unreadable: 1, zero-byte: 1)")
    out = tmp_path / "out"
    with pytest.raises(InputError) as err:
        run_synth(SynthJob(out=out, num_samples=2, seed=0, backgrounds=f"folder:{bad.parent}", config=CFG))
    assert str(err.value) == said and not out.exists()
    # online training: said by the training process (not a loader worker's traceback), no run folder made
    with pytest.raises(InputError) as err:
        train(TrainConfig(instances="sample", backgrounds=f"folder:{bad.parent}", out=str(out), workers=2))
    assert str(err.value) == said and not out.exists()
