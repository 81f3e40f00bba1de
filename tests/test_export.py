"""Export: torchvision weights load into maskrcnn_resnet50_fpn_v2; detectron2 and mmdet names;
clear errors."""

import pickle
import subprocess
import sys

import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

from codo_aug import InputError
from codo_train.export.write import export
from codo_train.models.codo import CoDoModel

from .helpers import cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = CoDoModel("resnet50", proj_hidden=64, proj_dim=16)
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    torch.save({"step": 1, "model": model.state_dict()}, path)
    return path, model


def test_torchvision_file_loads_into_mask_rcnn_v2(checkpoint, tmp_path):
    path, model = checkpoint
    out = tmp_path / "tv.pth"
    proc = cli("codo-train", "export", str(path), "--format", "torchvision", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "exported" in proc.stderr and "skipped" in proc.stderr and "online.projector" in proc.stderr
    detector = maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    missing, unexpected = detector.load_state_dict(torch.load(out), strict=False)
    assert unexpected == []
    assert not [k for k in missing if k.startswith(("backbone.body", "backbone.fpn", "roi_heads.box_head"))]
    assert torch.equal(detector.backbone.body.layer3[2].conv2.weight,
                       model.online.backbone.body.layer3[2].conv2.weight)
    assert torch.equal(detector.roi_heads.box_head[5].weight, model.online.box_head[5].weight)


def test_parts_select_backbone_and_fpn(checkpoint, tmp_path):
    path, _ = checkpoint
    cli("codo-train", "export", str(path), "--part", "backbone", "--out", str(tmp_path / "b.pth"), check=True)
    keys = torch.load(tmp_path / "b.pth").keys()
    assert keys and all(k.startswith("backbone.body.") for k in keys)
    cli("codo-train", "export", str(path), "--part", "fpn", "--out", str(tmp_path / "f.pth"), check=True)
    assert {k.split(".")[1] for k in torch.load(tmp_path / "f.pth")} == {"body", "fpn"}


def test_detectron2_pickle_uses_detectron2_names(checkpoint, tmp_path):
    path, model = checkpoint
    cli("codo-train", "export", str(path), "--format", "detectron2", "--out", str(tmp_path / "d2.pkl"),
        check=True)
    data = pickle.loads((tmp_path / "d2.pkl").read_bytes())
    assert data["matching_heuristics"] is True
    names = data["model"]
    for key in ("backbone.bottom_up.stem.conv1.weight", "backbone.bottom_up.stem.conv1.norm.running_var",
                "backbone.bottom_up.res2.0.conv1.weight", "backbone.bottom_up.res2.0.shortcut.norm.weight",
                "backbone.bottom_up.res5.2.conv3.norm.bias", "backbone.fpn_lateral2.weight",
                "backbone.fpn_lateral5.norm.weight", "backbone.fpn_output4.weight",
                "roi_heads.box_head.conv1.weight", "roi_heads.box_head.conv1.norm.weight",
                "roi_heads.box_head.conv4.norm.running_mean", "roi_heads.box_head.fc1.weight"):
        assert key in names, key
    assert names["backbone.bottom_up.res4.5.conv2.weight"].shape == (256, 256, 3, 3)
    assert (names["backbone.bottom_up.res3.1.conv1.weight"]
            == model.online.backbone.body.layer2[1].conv1.weight.detach().numpy()).all()
    assert not any("num_batches_tracked" in k or "projector" in k for k in names)


def test_mmdet_file_uses_mmdet_names(checkpoint, tmp_path):
    path, _ = checkpoint
    cli("codo-train", "export", str(path), "--format", "mmdet", "--out", str(tmp_path / "mm.pth"), check=True)
    state = torch.load(tmp_path / "mm.pth")["state_dict"]
    for key in ("backbone.conv1.weight", "backbone.layer1.0.downsample.1.running_mean",
                "neck.lateral_convs.0.conv.weight", "neck.lateral_convs.3.bn.weight",
                "neck.fpn_convs.2.conv.weight",
                "roi_head.bbox_head.shared_convs.0.conv.weight", "roi_head.bbox_head.shared_convs.3.bn.bias",
                "roi_head.bbox_head.shared_fcs.0.weight"):
        assert key in state, key
    assert state["roi_head.bbox_head.shared_fcs.0.weight"].shape == (1024, 256 * 7 * 7)


@pytest.mark.parametrize("content, message", [(b"", "is not a readable codo checkpoint"),
                                              (None, "no codo checkpoint at")])
def test_unreadable_checkpoints_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is not None:
        path.write_bytes(content)
    proc = cli("codo-train", "export", str(path), "--out", str(tmp_path / "o.pth"))
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.pth").exists()


def test_out_naming_a_folder_or_under_a_file_is_one_line(checkpoint, tmp_path):
    path, _ = checkpoint
    (tmp_path / "file").write_text("")
    for out, message in [(tmp_path, f"--out {tmp_path} is a folder; export writes one file: name it, e.g. "
                                     f"--out {tmp_path / 'weights.pkl'}"),
                         (tmp_path / "file" / "w.pkl", f"--out {tmp_path / 'file' / 'w.pkl'}: "
                                                       f"{tmp_path / 'file'} is not a folder")]:
        proc = cli("codo-train", "export", str(path), "--format", "detectron2", "--out", str(out))
        assert proc.returncode == 2 and proc.stderr == f"codo-train: error: {message}\n"


def test_an_existing_file_is_replaced_only_with_overwrite_and_a_trailing_slash_names_a_folder(checkpoint,
                                                                                             tmp_path):
    path, _ = checkpoint
    out = tmp_path / "w.pth"
    out.write_bytes(b"mine")
    with pytest.raises(InputError, match=f"^--out {out} exists; pass --overwrite to replace it$"):
        export(path, "torchvision", "backbone", out)
    assert out.read_bytes() == b"mine"
    export(path, "torchvision", "backbone", out, overwrite=True)
    assert "backbone.body.conv1.weight" in torch.load(out, weights_only=True)
    folder = f"{tmp_path / 'new'}/"  # not there yet: still a folder, never a file named 'new'
    with pytest.raises(InputError, match=f"^--out {folder} is a folder; export writes one file"):
        export(path, "torchvision", "backbone", folder)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("options, message", [({"fmt": "onnx"}, "invalid format='onnx': must be one of"),
                                              ({"part": "neck"}, "invalid part='neck': must be one of")])
def test_a_bad_format_or_part_is_refused_before_torch_loads(tmp_path, options, message):
    """A mistyped option is answered at once: torch (seconds to import) is not loaded to refuse it."""
    call = {"checkpoint": str(tmp_path / "none.pt"), "fmt": "torchvision", "part": "head",
            "out": str(tmp_path / "o.pth")} | options
    code = ("import sys\nfrom codo_train.export.write import export\n"
            f"try:\n    export(**{call!r})\nexcept Exception as exc:\n    print(exc)\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    error, torch_loaded = proc.stdout.splitlines()
    assert error.startswith(message) and torch_loaded == "False"
