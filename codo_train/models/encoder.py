"""Encoder = ResNet -> FPN P2-P5 (BN) -> RoIAlign 7x7 (aligned, by level) -> 4conv1fc box head -> projector;
Features, the same without the projector.

Module names and shapes follow torchvision's `maskrcnn_resnet50_fpn_v2` (backbone.body,
backbone.fpn, roi_heads.box_head) so pretrained weights drop into the detector unchanged
(SoCo's "architecture alignment", Wei et al. 2021).
"""

import torch
import torchvision
from torch import nn
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead

from ..config import ARCHS, LEVEL_MODES, LEVEL_RULES
from .levels import CANONICAL, pool_levels

FPN_CHANNELS = 256
BOX_HEAD_DIM = 1024


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """BYOL's projector/predictor: Linear -> BN -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


def build_backbone(arch: str) -> BackboneWithFPN:
    """ResNet C2-C5 + FPN with BatchNorm, as in maskrcnn_resnet50_fpn_v2, randomly initialised."""
    body = getattr(torchvision.models, arch)(weights=None, norm_layer=nn.BatchNorm2d)
    return BackboneWithFPN(
        body,
        return_layers={"layer1": "0", "layer2": "1", "layer3": "2", "layer4": "3"},
        in_channels_list=list(ARCHS[arch]),
        out_channels=FPN_CHANNELS,
        norm_layer=nn.BatchNorm2d,
    )


def build_box_head() -> FastRCNNConvFCHead:
    """torchvision's 4conv1fc box head with BN (256 channels, FC 1024)."""
    return FastRCNNConvFCHead((FPN_CHANNELS, 7, 7), [FPN_CHANNELS] * 4, [BOX_HEAD_DIM],
                              norm_layer=nn.BatchNorm2d)


class Features(nn.Module):
    """Images and per-image RoIs -> box-head features (N x 1024) per pooling branch: what a detector's head
    sees. `levels` = 'size' gives {'size': ...} (each RoI pooled at the FPN level `level_rule` picks), 'all'
    gives {'p2': ..., ..., 'p5': ...}; the box head is shared by all levels."""

    def __init__(self, arch: str, levels: str = "size", level_rule: str = "fpn"):
        super().__init__()
        if levels not in LEVEL_MODES:
            raise ValueError(f"levels must be one of {LEVEL_MODES}, got {levels!r}")
        if level_rule not in LEVEL_RULES:
            raise ValueError(f"level_rule must be one of {LEVEL_RULES}, got {level_rule!r}")
        self.levels = levels
        self.level_rule = level_rule
        self.backbone = build_backbone(arch)
        self.box_head = build_box_head()

    def box_features(self, images: torch.Tensor, rois: list[torch.Tensor], reference: float = CANONICAL,
                     rows: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Box-head features of the RoIs, per pooling branch. `rows`: the RoIs each FPN level pools, where
        the batch has assigned them (else the level rule's)."""
        pooled = pool_levels(self.backbone(images), rois, images.shape[-1], self.levels, reference,
                             self.level_rule, rows)
        return {name: self.box_head(x) for name, x in pooled.items()}


class Encoder(Features):
    """Images and per-image RoIs -> projected RoI embeddings, per pooling branch (Features, then a projector
    shared by all levels). Without `objects` (the image-level baseline) the RoI branches are skipped and only
    {'image': B x D} is given.
    """

    def __init__(self, arch: str, proj_hidden: int = 4096, proj_dim: int = 256, levels: str = "size",
                 image_level: bool = False, objects: bool = True, level_rule: str = "fpn"):
        super().__init__(arch, levels, level_rule)
        self.objects = objects
        self.projector = mlp(BOX_HEAD_DIM, proj_hidden, proj_dim)
        #: The optional image-level term: average-pooled P5 through its own projector.
        self.image_projector = mlp(FPN_CHANNELS, proj_hidden, proj_dim) if image_level else None

    def forward(self, images: torch.Tensor, rois: list[torch.Tensor], reference: float = CANONICAL,
                rows: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        out = {}
        if self.objects:
            pooled = pool_levels(features, rois, images.shape[-1], self.levels, reference, self.level_rule,
                                 rows)
            out = {name: self.projector(self.box_head(x)) for name, x in pooled.items()}
        if self.image_projector is not None:
            out["image"] = self.image_projector(features["3"].mean(dim=(2, 3)))
        return out
