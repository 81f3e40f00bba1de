"""`codo-aug synth` shards: layout, WebDataset compatibility, byte-identical reruns, lossless PNG
round trip."""

import hashlib
import json
import tarfile

import numpy as np
import webdataset as wds

from codo_aug import CoDoDataset
from codo_aug.shards.reader import expand_shards, iter_records

from .helpers import cli


def test_layout_and_info(sample_shards):
    names = sorted(p.name for p in sample_shards.iterdir())
    assert names == ["_index", "_info.json", "_job.json",
                     "codo-000000.tar", "codo-000001.tar", "codo-000002.tar"]
    info = json.loads((sample_shards / "_info.json").read_text())
    assert info["num_samples"] == 48 and info["seed"] == 0 and info["num_shards"] == 3
    assert [s["samples"] for s in info["shards"]] == [16, 16, 16]
    for entry in info["shards"]:
        data = (sample_shards / entry["name"]).read_bytes()
        assert entry["bytes"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["config"]["view_sizes"] == [224, 224, 112]
    assert info["sources"]["instances"]["items"] == 27
    with tarfile.open(sample_shards / "codo-000001.tar") as tar:
        members = tar.getnames()
    assert members[:4] == ["000000016.view0.jpg", "000000016.view1.jpg", "000000016.view2.jpg",
                           "000000016.json"]
    assert len(members) == 16 * 4


def test_webdataset_reads_the_shards_unchanged(sample_shards):
    urls = expand_shards(str(sample_shards / "*.tar"))
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8")
    seen = []
    for rec in ds:
        seen.append(rec["__key__"])
        meta = rec["json"]
        assert [rec[f"view{j}.jpg"].shape for j in range(3)] == [(224, 224, 3), (224, 224, 3), (112, 112, 3)]
        assert [v["size"] for v in meta["views"]] == [224, 224, 112]
        for v in meta["views"]:
            assert len(v["boxes"]) == len(v["rois"]) == len(v["ids"]) >= 1
        common = set.intersection(*(set(v["ids"]) for v in meta["views"]))
        assert common, "an instance must appear in every view"
        assert meta["recipe"]["index"] == meta["index"] == int(rec["__key__"])
        # each view on its own background
        assert len({v["background"] for v in meta["recipe"]["views"]}) == 3
    assert seen == [f"{i:09d}" for i in range(48)]


def test_same_command_and_seed_give_byte_identical_shards(sample_shards, tmp_path):
    cli("codo-aug", "synth", "--out", str(tmp_path / "again"), "--num-samples", "48", "--shard-size", "16",
        "--seed", "0", check=True)
    cli("codo-aug", "synth", "--out", str(tmp_path / "other"), "--num-samples", "16", "--shard-size", "16",
        "--seed", "1", check=True)
    for name in ("codo-000000.tar", "codo-000001.tar", "codo-000002.tar"):
        assert (tmp_path / "again" / name).read_bytes() == (sample_shards / name).read_bytes()
    assert ((tmp_path / "other" / "codo-000000.tar").read_bytes()
            != (sample_shards / "codo-000000.tar").read_bytes())


def test_png_shards_hold_exactly_the_pixels_of_the_dataset(tmp_path):
    out = tmp_path / "png"
    cli("codo-aug", "synth", "--out", str(out), "--num-samples", "4", "--seed", "3", "--image-format", "png",
        check=True)
    ds = CoDoDataset("sample", "sample", seed=3)
    records = list(iter_records(expand_shards(str(out))))
    assert len(records) == 4
    for rec in records:
        sample = ds[rec.meta["index"]]
        for got, view in zip(rec.views, sample.views):
            assert np.array_equal(got.image, view.image)
            assert (np.allclose(got.boxes, view.boxes, atol=1e-3)
                    and np.allclose(got.rois, view.rois, atol=1e-3))
            assert got.ids.tolist() == view.ids.tolist()
