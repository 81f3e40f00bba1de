"""A plain PyTorch loop over CoDoDataset: samples are rendered online in DataLoader workers.

    python examples/online_training_loop.py --steps 3 --batch-size 4 --workers 2

Swap "sample" for your own sources, e.g. instances="coco:/data/coco/annotations/instances_train2017.json"
and backgrounds="folder:/data/my_detection_set/images".
"""

import argparse

import torch
from torch.utils.data import DataLoader

from codo_aug import CoDoDataset, SynthConfig
from codo_aug.dataset import collate
from codo_train.data import normalise
from codo_train.losses.terms import pair_losses
from codo_train.models.codo import CoDoModel
from codo_train.momentum import update_momentum
from codo_train.optim import trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    dataset = CoDoDataset("sample", "sample", seed=0, config=SynthConfig(view_sizes=(160, 160, 96)))
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                        collate_fn=collate, generator=torch.Generator().manual_seed(0))
    model = CoDoModel("resnet18", proj_hidden=512)
    opt = torch.optim.SGD([p for _, p in trainable(model)], lr=0.02, momentum=0.9)
    for step, batch in zip(range(args.steps), loader):
        preds, targets = model([normalise(v) for v in batch.views], batch.rois)
        loss = torch.stack(list(pair_losses(preds, targets, batch.img, batch.ids).values())).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        update_momentum(model.online, model.target, 0.99)
        print(f"step {step + 1}: loss {loss.item():.4f}, instances per view {[len(i) for i in batch.ids]}")


if __name__ == "__main__":
    main()
