"""Export: each format loads through its consumer's loading code path (torchvision: codo_train.build_detector
and maskrcnn_resnet50_fpn_v2; detectron2 and mmdet: their file formats and exact key names); clear errors."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

from codo_aug import InputError
from codo_train import build_detector
from codo_train.evaluate import detector as detector_module
from codo_train.export.write import export
from codo_train.models.codo import CoDoModel

from .helpers import cli

ARCHS = ("resnet18", "resnet34", "resnet50")
BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}
#: The detector's state-dict prefixes each --part exports.
EXPORTED = {"backbone": ("backbone.body.",), "fpn": ("backbone.body.", "backbone.fpn."),
            "head": ("backbone.body.", "backbone.fpn.", "roi_heads.box_head.")}
BN = ("weight", "bias", "running_mean", "running_var")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A CoDo checkpoint of `arch` (made on first use, then kept for the module) and its model."""
    made = {}

    def get(arch: str) -> tuple:
        if arch not in made:
            torch.manual_seed(0)
            model = CoDoModel(arch, proj_hidden=64, proj_dim=16)
            path = tmp_path_factory.mktemp(arch) / "last.pt"
            torch.save({"step": 1, "model": model.state_dict()}, path)
            made[arch] = path, model
        return made[arch]

    return get


@pytest.fixture(scope="module")
def checkpoint(checkpoints):
    return checkpoints("resnet50")


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


@pytest.mark.slow
@pytest.mark.parametrize("arch, part, masks", [("resnet18", "head", True), ("resnet34", "fpn", False),
                                               ("resnet50", "head", False), ("resnet18", "backbone", False)])
def test_torchvision_file_loads_into_the_public_builder_of_its_arch(checkpoints, tmp_path, arch, part, masks):
    """The README's load: every exported key is the detector's, and exactly the parts not exported are
    missing (the RPN, the box predictor, the mask head, ...)."""
    path, model = checkpoints(arch)
    export(path, "torchvision", part, tmp_path / "tv.pth")
    state = torch.load(tmp_path / "tv.pth", weights_only=True)
    detector = build_detector(arch, num_classes=3, masks=masks)
    missing, unexpected = detector.load_state_dict(state, strict=False)
    assert unexpected == []
    # torch's BatchNorm counts a missing num_batches_tracked as 0 and does not report it
    assert sorted(missing) == sorted(k for k in detector.state_dict() if not k.startswith(EXPORTED[part])
                                     and not k.endswith(".num_batches_tracked"))
    assert all(torch.equal(detector.state_dict()[k], v) for k, v in state.items())
    assert torch.equal(detector.backbone.body.layer4[1].conv2.weight,
                       model.online.backbone.body.layer4[1].conv2.weight)


def test_the_public_builder_is_lazy_and_refuses_an_unknown_arch():
    """`import codo_train` (the CLI's, for `--help`) does not load torch; the builder does, on first use."""
    code = "import sys, codo_train\nprint('torch' in sys.modules)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "False\n"
    assert build_detector is detector_module.build_detector
    with pytest.raises(InputError, match="^invalid arch='resnet101': must be one of resnet18, resnet34, "
                                         "resnet50$"):
        build_detector("resnet101", 3, masks=False)


def detectron2_load_file(filename: str) -> dict:
    """detectron2's DetectionCheckpointer._load_file on a file (v0.6): a name ending in '.pkl' is unpickled
    (latin1) and taken as it is when it holds 'model' and '__author__' (else read as a Caffe2 file); any
    other name goes to fvcore's torch.load. Then fvcore's _convert_ndarray_to_tensor takes numpy arrays
    or tensors only."""
    if not filename.endswith(".pkl"):
        return torch.load(filename, map_location="cpu")
    with open(filename, "rb") as fh:
        data = pickle.load(fh, encoding="latin1")
    assert "model" in data and "__author__" in data, "read as a Caffe2 / Detectron1 file"
    assert all(isinstance(v, (np.ndarray, torch.Tensor)) for v in data["model"].values())
    return data


def detectron2_names(arch: str) -> set[str]:
    """The state-dict names (num_batches_tracked aside) of detectron2's build_resnet_fpn_backbone and a
    FastRCNNConvFCHead of 4 convs and 1 fc, all with a norm (convs without bias): the stem, res2..res5
    (a shortcut where a block changes the channels), fpn_lateral/output2..5, box_head conv1..4 and fc1."""
    def conv(name: str) -> set[str]:
        return {f"{name}.weight"} | {f"{name}.norm.{k}" for k in BN}

    convs = 3 if arch == "resnet50" else 2  # bottleneck or basic blocks
    names = conv("backbone.bottom_up.stem.conv1")
    for stage, blocks in enumerate(BLOCKS[arch], start=2):
        for b in range(blocks):
            block = f"backbone.bottom_up.res{stage}.{b}"
            names |= set().union(*(conv(f"{block}.conv{c}") for c in range(1, convs + 1)))
            if b == 0 and (stage > 2 or arch == "resnet50"):
                names |= conv(f"{block}.shortcut")
    for level in range(2, 6):
        names |= conv(f"backbone.fpn_lateral{level}") | conv(f"backbone.fpn_output{level}")
    names |= set().union(*(conv(f"roi_heads.box_head.conv{c}") for c in range(1, 5)))
    return names | {"roi_heads.box_head.fc1.weight", "roi_heads.box_head.fc1.bias"}


@pytest.mark.parametrize("arch", ARCHS)
def test_detectron2_pkl_loads_as_detectron2_loads_it_with_detectron2s_names(checkpoints, tmp_path, arch):
    path, model = checkpoints(arch)
    export(path, "detectron2", "head", tmp_path / "d2.pkl")
    data = detectron2_load_file(str(tmp_path / "d2.pkl"))
    assert data["__author__"] == "codo" and data["matching_heuristics"] is True
    names = data["model"]
    assert set(names) == detectron2_names(arch)
    wide = 4 if arch == "resnet50" else 1
    assert names["backbone.bottom_up.res5.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert names["backbone.bottom_up.res3.0.shortcut.weight"].shape == (128 * wide, 64 * wide, 1, 1)
    assert names["roi_heads.box_head.fc1.weight"].shape == (1024, 256 * 7 * 7)
    assert (names["backbone.bottom_up.res3.1.conv1.weight"]
            == model.online.backbone.body.layer2[1].conv1.weight.detach().numpy()).all()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch.load's, on the pickle it fails to read
def test_detectron2_export_refuses_a_name_detectron2_would_not_unpickle(checkpoint, tmp_path):
    """detectron2 hands any file not ending in .pkl to torch.load, which cannot read a pickle (torch < 2.6:
    'Invalid magic number'; later, whose torch.load reads weights only by default: 'Weights only load
    failed')."""
    path, _ = checkpoint
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"model": {}, "__author__": "codo"}))
    with pytest.raises(pickle.UnpicklingError, match="Invalid magic number|Weights only load failed"):
        detectron2_load_file(str(tmp_path / "plain.pth"))
    proc = cli("codo-train", "export", str(path), "--format", "detectron2", "--out", str(tmp_path / "w.pth"))
    assert proc.returncode == 2 and proc.stderr == (
        f"codo-train: error: --out {tmp_path / 'w.pth'}: a detectron2 export must end in .pkl (detectron2 "
        f"picks its loader by the suffix); name it, e.g. --out {tmp_path / 'w.pkl'}\n")
    assert not (tmp_path / "w.pth").exists()


def mmdet_names(arch: str) -> set[str]:
    """The state-dict names of mmdet's ResNet (torchvision's, without fc), FPN (ConvModules with BN:
    lateral_convs/fpn_convs.K.{conv,bn}) and Shared4Conv1FCBBoxHead (shared_convs.K.{conv,bn},
    shared_fcs.0)."""
    def conv_module(name: str) -> set[str]:
        return {f"{name}.conv.weight"} | {f"{name}.bn.{k}" for k in (*BN, "num_batches_tracked")}

    body = getattr(torchvision.models, arch)(weights=None).state_dict()
    names = {f"backbone.{k}" for k in body if not k.startswith("fc.")}
    for k in range(4):
        names |= conv_module(f"neck.lateral_convs.{k}") | conv_module(f"neck.fpn_convs.{k}")
        names |= conv_module(f"roi_head.bbox_head.shared_convs.{k}")
    return names | {"roi_head.bbox_head.shared_fcs.0.weight", "roi_head.bbox_head.shared_fcs.0.bias"}


@pytest.mark.parametrize("arch", ARCHS)
def test_mmdet_file_loads_as_mmengine_loads_it_with_mmdets_names(checkpoints, tmp_path, arch):
    """mmengine's load_checkpoint: torch.load (weights only, as torch >= 2.6 does by default), then the
    'state_dict' entry by mmdet's module names."""
    path, model = checkpoints(arch)
    export(path, "mmdet", "head", tmp_path / "mm.pth")
    state = torch.load(tmp_path / "mm.pth", map_location="cpu", weights_only=True)["state_dict"]
    assert set(state) == mmdet_names(arch)
    assert state["roi_head.bbox_head.shared_fcs.0.weight"].shape == (1024, 256 * 7 * 7)
    assert torch.equal(state["neck.fpn_convs.2.conv.weight"],
                       model.online.backbone.fpn.layer_blocks[2][0].weight)


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
