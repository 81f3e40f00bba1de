"""decode(): one read per file, the size from the file's own header, and cv2 for plain 8-bit JPEG and PNG
with exactly Pillow's pixels; everything else through Pillow as before."""

import io
import os
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from codo_aug.render.paint import background_view
from codo_aug.sources.base import Item, Source
from codo_aug.sources import decode as decode_module
from codo_aug.sources.decode import BadImage, decode, layout
from codo_aug.sources.skips import SkipLog

from .test_bad_images import photo

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


RGB = Image.fromarray(photo(96, 64))
#: name -> (bytes, whether cv2 decodes it)
FILES = {
    "jpeg": (encoded(RGB, "JPEG", quality=90), True),
    "progressive jpeg": (encoded(RGB, "JPEG", quality=90, progressive=True), True),
    "grey jpeg": (encoded(RGB.convert("L"), "JPEG"), True),
    "cmyk jpeg": (encoded(RGB.convert("CMYK"), "JPEG"), False),
    "rgb png": (encoded(RGB, "PNG"), True),
    "rgba png": (encoded(RGB.convert("RGBA"), "PNG"), True),
    "grey png": (encoded(RGB.convert("L"), "PNG"), True),
    "grey+alpha png": (encoded(RGB.convert("LA"), "PNG"), False),
    "palette png": (encoded(RGB.convert("P"), "PNG"), False),
    "transparent-colour png": (encoded(RGB, "PNG", transparency=(0, 0, 0)), False),
}
SIXTEEN_BIT = encoded(Image.fromarray(np.full((64, 96), 4000, np.uint16)), "PNG")  # scaled, not clipped


@pytest.mark.parametrize("name", list(FILES))
def test_header_gives_the_size_and_the_decoder_and_pixels_match_pillow(name, tmp_path):
    data, fast = FILES[name]
    form = layout(data)
    assert (form.width, form.height, form.cv2_ok) == (96, 64, fast)
    path = tmp_path / "f"
    path.write_bytes(data)
    for alpha in (False, True):
        got = decode(str(path), alpha=alpha)
        want = np.array(Image.open(io.BytesIO(data)).convert("RGBA" if alpha else "RGB"))
        assert got.shape == want.shape == (64, 96, 4 if alpha else 3)
        assert np.array_equal(got, want)  # Pillow's libjpeg-turbo decodes JPEG as cv2's does


def test_other_formats_have_no_layout_and_broken_headers_none():
    sixteen = layout(SIXTEEN_BIT)
    assert (sixteen.width, sixteen.height, sixteen.cv2_ok) == (96, 64, False)  # Pillow, then codo's scaling
    assert layout(encoded(RGB, "BMP")) is None and layout(encoded(RGB, "WEBP")) is None
    assert layout(b"\xff\xd8\xff\xe0\x00\x01garbage") is None  # no start-of-frame: Pillow judges it
    assert layout(b"\x89PNG\r\n\x1a\n\x00\x00") is None


#: The PNG decoders decode() may use: libspng where installed, cv2 (libpng) without it.
PNG_DECODERS = {"spng": lambda: decode_module.pyspng or pytest.skip("pyspng is not installed"),
                "cv2": lambda: None}


@pytest.fixture(params=list(PNG_DECODERS))
def png_decoder(request, monkeypatch) -> str:
    monkeypatch.setattr(decode_module, "pyspng", PNG_DECODERS[request.param]())
    return request.param


def test_real_stamps_decode_through_the_fast_path_to_pillows_pixels(png_decoder):
    stamps = sorted((DATA / "tuxpaint").rglob("*.png"))[:60] if (DATA / ".complete").exists() else []
    if not stamps:
        pytest.skip("no test data (scripts/fetch_test_data.sh)")
    through_cv2 = 0
    for p in stamps:
        form = layout(p.read_bytes())
        with Image.open(p) as im:
            assert (form.width, form.height) == im.size
            want = np.array(im.convert("RGBA"))
        through_cv2 += form.cv2_ok
        assert np.array_equal(decode(str(p), alpha=True), want), p
    assert through_cv2 >= 50  # most stamps are plain 8-bit RGBA


@pytest.mark.parametrize("flip", ["tEXt", "IEND"])
def test_a_bad_crc_on_an_ancillary_chunk_or_iend_decodes_whichever_decoder(flip, png_decoder, tmp_path):
    """libpng and Pillow decode these; so does decode(), with either decoder: the same files are usable."""
    data = bytearray(encoded(RGB.convert("RGBA"), "PNG"))
    text = b"tEXt" + b"note\x00after the pixels"
    chunk = len(text[4:]).to_bytes(4, "big") + text + zlib.crc32(text).to_bytes(4, "big")
    data[-12:-12] = chunk  # a tEXt chunk between IDAT and IEND
    data[data.rindex(flip.encode()) + 4 + (len(text) - 4 if flip == "tEXt" else 0)] ^= 0x01  # its CRC's byte
    (tmp_path / "f.png").write_bytes(bytes(data))
    got = decode(str(tmp_path / "f.png"), alpha=True)
    assert np.array_equal(got, np.array(RGB.convert("RGBA")))


@pytest.mark.parametrize("damage", ["flipped IDAT byte", "flipped CRC byte", "no IEND", "cut in IDAT"])
def test_a_damaged_png_is_corrupt_whichever_decoder(damage, png_decoder, tmp_path):
    """libspng decodes IDAT data whose checksums fail; decode() checks every chunk's CRC first."""
    data = bytearray(FILES["rgba png"][0])
    idat = data.index(b"IDAT")
    end = idat + 4 + int.from_bytes(data[idat - 4:idat], "big")  # the IDAT chunk's CRC starts here
    damaged = {"flipped IDAT byte": lambda d: d[:idat + 40] + bytes([d[idat + 40] ^ 1]) + d[idat + 41:],
               "flipped CRC byte": lambda d: d[:end] + bytes([d[end] ^ 0x80]) + d[end + 1:],
               "no IEND": lambda d: d[:-12], "cut in IDAT": lambda d: d[:idat + 200]}[damage](data)
    (tmp_path / "f.png").write_bytes(damaged)
    with pytest.raises(BadImage) as caught:
        decode(str(tmp_path / "f.png"), alpha=True)
    assert caught.value.reason == "corrupt"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_jpegs_upright_as_pillow_does(orientation, tmp_path):
    exif = RGB.getexif()
    exif[0x0112] = orientation
    data = encoded(RGB, "JPEG", quality=90, exif=exif)
    (tmp_path / "f.jpg").write_bytes(data)
    with Image.open(io.BytesIO(data)) as im:
        upright, stored = np.array(ImageOps.exif_transpose(im)), np.array(im)
    assert np.array_equal(decode(str(tmp_path / "f.jpg")), upright)
    assert np.array_equal(decode(str(tmp_path / "f.jpg"), exif=False), stored)


def test_real_photos_decode_to_cv2s_pixels_at_full_and_reduced_scale():
    photos = sorted((DATA / "scratch").rglob("*.jpg"))[:12] if (DATA / ".complete").exists() else []
    if not photos:
        pytest.skip("no test data (scripts/fetch_test_data.sh)")
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}
    for p in photos:
        w, h = layout(p.read_bytes()).width, layout(p.read_bytes()).height
        for factor, flag in flags.items():
            got = decode(str(p), draft=lambda w, h, f=factor: (w // f, h // f))
            want = cv2.cvtColor(cv2.imread(str(p), flag), cv2.COLOR_BGR2RGB)
            assert got.shape == want.shape == (-(-h // factor), -(-w // factor), 3)
            assert np.array_equal(got, want), (p, factor)


def test_a_reduced_background_decode_gives_the_views_pixels_within_a_few_levels():
    """Backgrounds decode at 1/2 or 1/4 when the view's crop still gets its pixels (the default): the
    view differs from the full-size decode's by libjpeg's DCT scaling and a sub-pixel shift of the crop
    (placed on the reduced image); measured on 20 photos: mean 4 levels, at most 9.3 on one view."""
    photos = sorted((DATA / "scratch").rglob("*.jpg"))[:20] if (DATA / ".complete").exists() else []
    if not photos:
        pytest.skip("no test data (scripts/fetch_test_data.sh)")
    items = [Item(str(p.relative_to(DATA / "scratch")), "bg") for p in photos]
    source = Source("folder", DATA / "scratch", items, SkipLog(), "backgrounds")
    means, factors = [], set()
    for i in range(len(photos)):
        full = source.background(i)
        for size, area in ((112, 0.9), (112, 0.4), (56, 1.0)):
            reduced = source.background(i, size, area)
            factors.add(full.shape[1] // reduced.shape[1])
            diff = np.abs(background_view(full, (area, 0.3, 0.6), size).astype(int)
                          - background_view(reduced, (area, 0.3, 0.6), size))
            means.append(diff.mean())
    assert factors == {2, 4}
    assert max(means) < 12 and np.mean(means) < 6
