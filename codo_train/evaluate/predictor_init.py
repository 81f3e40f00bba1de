"""How the box predictor (class scores and box deltas) of a fine-tuned detector starts: a registry of
inits that needs no torch import (the options are checked before torch loads)."""

from typing import Any, Callable


def detectron2_predictor_init(predictor: Any) -> None:
    """detectron2's FastRCNNOutputLayers: class scores ~ N(0, 0.01), box deltas ~ N(0, 0.001), biases 0
    (torchvision keeps nn.Linear's default, uniform in +-1/sqrt(1024) for the 4conv1fc head). The draws
    are nn.init.normal_'s: the same generator calls on the weights' data."""
    for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
        layer.weight.data.normal_(0.0, std)
        layer.bias.data.zero_()


#: name -> init of a torchvision FastRCNNPredictor (in place).
PREDICTOR_INITS: dict[str, Callable[[Any], None]] = {
    "detectron2": detectron2_predictor_init, "torchvision": lambda predictor: None}
