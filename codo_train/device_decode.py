"""Views decoded and photometrically augmented on a torch device (issue 12, point 4; online views, issue 13).

`ShardDataset(pixels=False)` hands on each view's encoded bytes and its photometric draws (`Record.photo`)
instead of decoding and augmenting in the DataLoader worker, and `CoDoDataset(defer_photometrics=True)`
its rendered views with their draws (`Sample.photo`); `decode_views` decodes a batch of encoded views
(nvJPEG on CUDA) and `apply_photo_tensor` applies the draws there. The ops follow the CPU path
(codo_aug.render.photometric.apply_photo) down to its cv2 kernels: pixels stay integers saturated to
0..255 after every step, greyscale is cv2's 15-bit fixed-point sum, hue goes through cv2's 8-bit HSV_FULL
and blur through the same float separable Gaussian, so on the same pixels the two paths agree to within a
level or so (tests/test_device_decode.py measures it). Per-image numbers reach the device through pinned
memory without a host-device synchronisation.
"""

import functools
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_image, decode_jpeg

from codo_aug.recipes.recipe import PhotoDraw
from codo_aug.render.gaussian import gaussian_kernel
from codo_aug.shards.format import sniff_format

#: cv2's 8-bit RGB -> grey weights (0.299, 0.587, 0.114 with 15 fractional bits).
_GREY_WEIGHTS = (9798, 19235, 3735)
_GREY_SHIFT = 15
#: Fractional bits of cv2's 8-bit HSV tables.
_HSV_SHIFT = 12
#: cv2's 8-bit HSV_FULL hue: 256 steps around the circle going in, 255 coming back (cv2 does so).
_HUE_IN, _HUE_OUT = 256, 255
#: cv2's HSV -> RGB: which of (v, p, q, t) each hue sector puts in R, G and B.
_SECTORS = ((0, 3, 1), (2, 0, 1), (1, 0, 3), (1, 2, 0), (3, 1, 0), (0, 1, 2))
#: The factor of each colour jitter op (PhotoDraw.order numbers them) that leaves an image as it is.
_JITTER = (("brightness", 1.0), ("contrast", 1.0), ("saturation", 1.0), ("hue", 0.0))


def _tensor(e: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(e if e.flags.writeable else e.copy())


def decode_views(encoded: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Bx3xSxS uint8 RGB on `device` of one view's encoded images (1-D uint8, as `decode_record(...,
    pixels=False)` leaves them): JPEGs in one batched `decode_jpeg` on the device, other formats
    decoded on the CPU and moved. ValueError when the images' sizes differ."""
    device = torch.device(device)
    data = [_tensor(e) for e in encoded]
    jpegs = [i for i, e in enumerate(encoded) if sniff_format(e) == "jpg"]
    images: list[torch.Tensor | None] = [None] * len(data)
    if jpegs and device.type == "cuda":  # nvJPEG writes on its own stream into memory this stream's pool
        torch.cuda.current_stream(device).synchronize()  # hands out: nothing queued here may still use it
    decoded = decode_jpeg([data[i] for i in jpegs], device=device, mode=ImageReadMode.RGB) if jpegs else []
    for i, image in zip(jpegs, decoded):
        images[i] = image
    for i in (i for i, image in enumerate(images) if image is None):
        images[i] = decode_image(data[i], mode=ImageReadMode.RGB).to(device)
    shapes = sorted({tuple(image.shape) for image in images})
    if len(shapes) != 1:
        raise ValueError(f"views of {len(shapes)} shapes ({shapes}) do not stack into one batch")
    return torch.stack(images)


def _on(device: torch.device, values: list, dtype: torch.dtype) -> torch.Tensor:
    """`values` as a tensor on `device`; to CUDA from pinned memory without waiting for the copy."""
    host = torch.tensor(values, dtype=dtype)
    return host.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else host.to(device)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Nx1xHxW grey of Nx3xHxW integer-valued float pixels, rounded as cv2 does (exact in float32)."""
    r, g, b = (x[:, c:c + 1] * w for c, w in enumerate(_GREY_WEIGHTS))
    return torch.floor((r + g + b + (1 << (_GREY_SHIFT - 1))) / (1 << _GREY_SHIFT))


def _saturate(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255)


def _blend(x: torch.Tensor, coefs: torch.Tensor) -> torch.Tensor:
    """cv2.addWeighted's brightness, contrast or saturation step per image, x * f + grey * s + c * mean
    grey, with (f, s, c) a row of `coefs`: (b, 0, 0), (c, 0, 1 - c), (s, 1 - s, 0) or (1, 0, 0) for none."""
    f, s, c = (coefs[:, k, None, None, None] for k in range(3))
    grey = _grey(x)
    mean = grey.sum(dim=(1, 2, 3), keepdim=True, dtype=torch.float64) / grey[0].numel()
    return _saturate(x * f.float() + grey * s.float() + (c * mean).float())


@functools.cache
def _div_table(numerator: int, step: int, device: torch.device) -> torch.Tensor:
    """cv2's 8-bit HSV division table: round(numerator / (step i)) for i in 0..255 (0 at 0), as int32;
    built once per device."""
    i = torch.arange(256, device=device, dtype=torch.float64)
    return torch.where(i > 0, torch.round(numerator / (step * i.clamp(min=1))), 0).to(torch.int32)


def _to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """cv2's RGB -> HSV_FULL on 8-bit pixels (Nx3xHxW int32): hue 0..255 around the circle, S, V."""
    r, g, b = x.unbind(1)
    v, vmin = x.amax(1), x.amin(1)
    diff = v - vmin
    half = 1 << (_HSV_SHIFT - 1)
    s = (diff * _div_table(255 << _HSV_SHIFT, 1, x.device)[v] + half) >> _HSV_SHIFT
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _div_table(_HUE_IN << _HSV_SHIFT, 6, x.device)[diff] + half) >> _HSV_SHIFT
    return torch.where(h < 0, h + _HUE_IN, h).clamp(max=255), s, v


@functools.cache
def _sectors(device: torch.device) -> torch.Tensor:
    """_SECTORS on `device`, copied once (a blocking copy: the table outlives any one stream)."""
    return torch.tensor(_SECTORS, dtype=torch.long).to(device)


def _to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """cv2's HSV_FULL -> RGB on 8-bit channels (NxHxW int32), as Nx3xHxW integer-valued float."""
    hue = h.float() * (6 / _HUE_OUT)
    sector = hue.floor()
    frac = hue - sector
    s, v = s.float() * (1 / 255), v.float() * (1 / 255)
    tab = torch.stack([v, v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))], dim=1)
    pick = _sectors(h.device)[sector.long() % 6].permute(0, 3, 1, 2)
    return _saturate(tab.gather(1, pick) * 255)


def _hue(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Hue rotated by `shifts` (N int, 256ths of the circle) through cv2's 8-bit HSV_FULL round trip."""
    h, s, v = _to_hsv(x.to(torch.int32))
    return _to_rgb((h + shifts[:, None, None]) % _HUE_IN, s, v)


def _jitter_step(x: torch.Tensor, steps: list[tuple[int, float] | None]) -> torch.Tensor:
    """One position of the colour jitter order: (op, factor) per image, None where nothing applies."""
    coefs = [(1.0, 0.0, 0.0) if step is None or step[0] == 3 else
             (step[1], 1.0 - step[1] if step[0] == 2 else 0.0, 1.0 - step[1] if step[0] == 1 else 0.0)
             for step in steps]
    if any(c != (1.0, 0.0, 0.0) for c in coefs):
        x = _blend(x, _on(x.device, coefs, torch.float64))
    hue_rows = [i for i, step in enumerate(steps) if step is not None and step[0] == 3]
    if hue_rows:
        rows = _on(x.device, hue_rows, torch.long)
        shifts = _on(x.device, [round(steps[i][1] * _HUE_IN) % _HUE_IN for i in hue_rows], torch.int32)
        x = x.index_copy(0, rows, _hue(x[rows], shifts))
    return x


def _step_at(d: PhotoDraw, k: int) -> tuple[int, float] | None:
    """(op, factor) at position `k` of `d.order`; None when there is none or it is the identity."""
    if k >= len(d.order):
        return None
    name, identity = _JITTER[d.order[k]]
    factor = getattr(d, name)
    return None if factor == identity else (d.order[k], factor)


def _filter_rows(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Each image's rows filtered with its own (odd, zero-padded) float taps, borders reflected as cv2's
    BORDER_REFLECT_101 (torch's 'reflect')."""
    radius = taps.shape[1] // 2
    padded = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    width = x.shape[-1]
    return sum(taps[:, i, None, None, None] * padded[..., i:i + width] for i in range(taps.shape[1]))


def _blur(x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """codo_aug's Gaussian blur (render.gaussian: cv2's float separable filter) with each image's sigma
    (0: none), rounded half to even as cv2 rounds floats to uint8."""
    rows = [i for i, sigma in enumerate(sigmas) if sigma > 0]
    if not rows:
        return x
    taps = [gaussian_kernel(sigmas[i]).ravel().tolist() for i in rows]
    radius = max(len(t) for t in taps) // 2
    taps = _on(x.device, [[0.0] * (radius - len(t) // 2) + t + [0.0] * (radius - len(t) // 2) for t in taps],
               torch.float32)
    index = _on(x.device, rows, torch.long)
    sub = _filter_rows(_filter_rows(x[index], taps).transpose(-1, -2), taps).transpose(-1, -2)
    return x.index_copy(0, index, torch.round(sub))


def _where(x: torch.Tensor, flags: list[bool], changed: Callable) -> torch.Tensor:
    """`changed(x)` for the images whose flag is set, the rest as they are."""
    if not any(flags):
        return x
    return torch.where(_on(x.device, flags, torch.bool)[:, None, None, None], changed(x), x)


def _transform(x: torch.Tensor, draws: list[PhotoDraw]) -> torch.Tensor:
    """apply_photo's steps on Nx3xHxW integer-valued float pixels, one draw per image."""
    for k in range(max(len(d.order) for d in draws)):
        x = _jitter_step(x, [_step_at(d, k) for d in draws])
    x = _where(x, [d.grayscale for d in draws], lambda y: _grey(y).expand_as(y))
    x = _blur(x, [d.blur_sigma for d in draws])
    return _where(x, [d.solarize for d in draws], lambda y: torch.where(y < 128, y, 255 - y))


def apply_photo_tensor(images: torch.Tensor, draws: list[PhotoDraw]) -> torch.Tensor:
    """`images` (Bx3xHxW uint8, any device) each with its draw, as codo_aug's apply_photo does on the CPU;
    the same tensor when every draw is the identity. Vectorised over the batch: each jitter position
    is one blend over the images (plus one hue pass over those rotating hue there), then greyscale,
    blur (over the blurred images) and solarize: some 150 elementwise passes over the batch, launched in
    a few dozen steps whatever the batch size, and no host-device synchronisation. On a CPU it is slow
    (about 3 s for 200 112-pixel views on 2 threads; cv2's apply_photo is the CPU path)."""
    if images.ndim != 4 or images.shape[1] != 3 or len(draws) != images.shape[0]:
        raise ValueError(f"{len(draws)} draws for images of shape {tuple(images.shape)} (want Bx3xHxW)")
    rows = [i for i, d in enumerate(draws) if d != PhotoDraw(order=d.order)]
    if not rows:
        return images
    index = _on(images.device, rows, torch.long)
    changed = _transform(images[index].float(), [draws[i] for i in rows])
    return images.index_copy(0, index, changed.to(torch.uint8))
