"""torchvision's Mask R-CNN v2 (or Faster R-CNN v2 without masks) over any of our ResNet-FPN
backbones, built exactly as `maskrcnn_resnet50_fpn_v2` builds its own, so exported weights load; with
detectron2's initialisation of the box predictor and, optionally, InsLoc's BatchNorm after the box head."""

import zipfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads
from torchvision.models.detection.rpn import RPNHead

from codo_aug.errors import InputError

from ..checkpoint import CHECKPOINT, read_torch_file
from ..config import ARCHS
from ..models.encoder import BOX_HEAD_DIM, FPN_CHANNELS, build_backbone, build_box_head
from .predictor_init import PREDICTOR_INITS

DETECTOR_PARTS = ("backbone.body.", "backbone.fpn.", "roi_heads.box_head.")


def build_detector(arch: str, num_classes: int, masks: bool, min_size: int = 800, max_size: int = 1333,
                   rois_per_image: int = 512, proposals: int = 0, predictor_init: str = "detectron2",
                   box_head_bn: bool = False) -> nn.Module:
    """Mask R-CNN v2 (`masks`) or Faster R-CNN v2 over a ResNet `arch` (resnet18, resnet34 or resnet50)
    with `num_classes` (background included), randomly initialised; public as `codo_train.build_detector`.

    A `codo-train export --format torchvision` file of the same arch loads into it with no missing
    backbone, FPN or box-head key and no unexpected key. `min_size` and `max_size` (the shorter side's
    target and the longer side's cap) default to torchvision's; `codo-train finetune` passes its own.
    `rois_per_image` RoIs train the box head per image and `proposals` (0: torchvision's 2,000 in
    training, 1,000 in testing) leave the RPN; the 4conv1fc head's cost scales with both. The box
    predictor starts as `predictor_init` (a PREDICTOR_INITS name) says. `box_head_bn` appends a
    BatchNorm1d after the box head's fc and ReLU (InsLoc's FastRCNNConvFCHeadExtraNorm, Yang et al.
    2021, transfer/detection/train_net.py); the head's own layers keep their names, so exported
    weights load as they do without it.
    """
    if arch not in ARCHS:
        raise InputError(f"invalid arch={arch!r}: must be one of {', '.join(ARCHS)}")
    backbone = build_backbone(arch)
    box_head = build_box_head()
    if box_head_bn:
        box_head.append(nn.BatchNorm1d(BOX_HEAD_DIM))
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    kwargs = dict(rpn_anchor_generator=anchors, rpn_head=RPNHead(FPN_CHANNELS, 3, conv_depth=2),
                  box_head=box_head, min_size=min_size, max_size=max_size,
                  box_batch_size_per_image=rois_per_image)
    if proposals:
        kwargs.update(rpn_post_nms_top_n_train=proposals, rpn_post_nms_top_n_test=proposals)
    if masks:
        model = MaskRCNN(backbone, num_classes=num_classes, mask_head=MaskRCNNHeads(
            FPN_CHANNELS, [256] * 4, 1, norm_layer=nn.BatchNorm2d), **kwargs)
    else:
        model = FasterRCNN(backbone, num_classes=num_classes, **kwargs)
    PREDICTOR_INITS[predictor_init](model.roi_heads.box_predictor)
    return model


def freeze_batchnorm(module: nn.Module) -> int:
    """Fix every BatchNorm2d under `module` at its loaded statistics and affine values (what
    torchvision's FrozenBatchNorm2d does for pretrained backbones); call after `.train()`. Returns
    how many layers were frozen."""
    layers = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in layers:
        bn.eval()
        bn.requires_grad_(False)
    return len(layers)


def _export_hint(path: Path) -> str:
    return f"export it first: codo-train export {path} --format torchvision --out weights.pth"


def read_weights(path: Path) -> dict:
    """The tensors of a `codo-train export --format torchvision` file; one-line InputError for what is not
    one: a run folder or training checkpoint (export it first), a detectron2 pickle, another dict."""
    if path.is_dir():
        if (path / CHECKPOINT).is_file():
            raise InputError(f"{path} is a codo-train run folder, not detector weights; {_export_hint(path)}")
        raise InputError(f"{path} is a folder; --weights takes the file `codo-train export` writes")
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes zip archives, pickle.dump not
        raise InputError(f"{path} is not a torch file (a detectron2 .pkl?); --weights takes the output of "
                         "`codo-train export --format torchvision`")
    state = read_torch_file(path, "weights file", weights_only=True)
    if isinstance(state, dict) and {"model", "step"} <= state.keys():
        raise InputError(f"{path} is a codo-train training checkpoint, not detector weights; "
                         f"{_export_hint(path)}")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        keys = ", ".join(sorted(map(str, state))[:3]) if isinstance(state, dict) else type(state).__name__
        raise InputError(f"{path} is not a state dict of tensors ({keys}...); --weights takes the output of "
                         "`codo-train export --format torchvision`")
    return state


def weights_arch(state: dict) -> str | None:
    """The torchvision ResNet an exported state dict holds: bottleneck blocks (a conv3) are resnet50's;
    of the basic-block ones, resnet18 has 2 blocks in layer3 and resnet34 6. None when it has no body."""
    blocks = {k.split(".")[3] for k in state if k.startswith("backbone.body.layer3.")}
    if not blocks:
        return None
    if any(k.startswith("backbone.body.layer1.0.conv3.") for k in state):
        return "resnet50"
    return {2: "resnet18", 6: "resnet34"}.get(len(blocks))


def load_pretrained(detector: nn.Module, state: dict, path: Path, arch: str) -> dict:
    """Load `state` (from `read_weights(path)`) into `detector` (a resnet `arch`); InputError naming what
    does not fit, and the --arch to pass when the weights are of another ResNet."""
    own = detector.state_dict()
    unexpected = sorted(k for k in state if k not in own)
    shapes = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    missing = sorted(k for k in own if k.startswith(DETECTOR_PARTS[:1]) and k not in state)
    if unexpected or shapes or missing:
        what = [f"{len(x)} {name} ({', '.join(x[:2])}...)" for x, name in
                ((missing, "missing"), (shapes, "of other shapes"), (unexpected, "unexpected")) if x]
        theirs = weights_arch(state)
        hint = f"; the weights are {theirs}'s: pass --arch {theirs}" if theirs not in (None, arch) else ""
        raise InputError(f"{path} does not fit this detector's {arch} backbone: {'; '.join(what)} key(s)"
                         f"{hint}")
    detector.load_state_dict(state, strict=False)
    return {"loaded": len(state)}
