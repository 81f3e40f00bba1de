"""Batches on the training device, the next one's host-to-device copy already under way."""

import contextlib
import copy
from typing import Iterator

import torch

from .batch import TrainBatch
from .data import DataPosition


class DeviceBatches:
    """`next()` gives a batch on `device`. On CUDA the following batch (page-locked by the DataLoader) is
    copied on a side stream while the current step computes, and the step's stream waits for its copy on
    the device, not the host (as NVIDIA's Apex data_prefetcher); elsewhere each batch is moved when
    asked for. `position` is where the input stands after the batches given out, not the one read ahead
    (what a checkpoint must hold); `stream` keeps it up to date as it yields."""

    def __init__(self, stream: Iterator[TrainBatch], position: DataPosition, device: torch.device):
        self.source, self.device, self._live = stream, device, position
        self.position = copy.deepcopy(position)
        self.side = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.ahead: tuple[TrainBatch, DataPosition] | None = None

    def __iter__(self) -> "DeviceBatches":
        return self

    def __next__(self) -> TrainBatch:
        batch, self.position = self.ahead or self._read()
        if self.side is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_stream(self.side)
            for tensor in batch.tensors():
                if tensor.is_cuda:
                    tensor.record_stream(current)  # its memory is not reused while the step may read it
            self.ahead = self._read()
        return batch

    def _read(self) -> tuple[TrainBatch, DataPosition]:
        """The next batch, its copy to the device started (on the side stream on CUDA), and the position
        after it."""
        host = next(self.source)
        with torch.cuda.stream(self.side) if self.side is not None else contextlib.nullcontext():
            return host.to(self.device), copy.deepcopy(self._live)
