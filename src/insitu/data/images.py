"""Pictures before they become spikes: resizing and random translation.

* :func:`resize_images`: crop and area-average images (MNIST 28x28 -> 16x16 inputs, as in
  Cramer et al. 2022, PNAS 119(4), e2109194119, where 256 inputs feed the BrainScaleS-2 chip).
  Exact area weights, not ``torch.nn.functional.interpolate(mode="area")``: that one is
  adaptive average pooling, equal for integer ratios but, for 24 -> 16, up to 0.19 away per
  pixel on MNIST and not mean-preserving.
* :func:`shift_images`: translate each sample's spike picture by a random whole number of
  pixels, the augmentation redrawn every epoch.
"""

from __future__ import annotations

import math

import torch

from insitu.errors import ConfigError, check_count

__all__ = ["resize_images", "shift_images"]


def _area_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of exact area averaging from n_in pixels onto n_out pixels.

    Output pixel i covers the interval [i*s, (i+1)*s) of the input axis, s = n_in / n_out;
    its weight on input pixel j is the length of that interval's overlap with [j, j+1),
    divided by s. Rows sum to 1; every column sums to n_out / n_in, so the mean is kept.
    """
    scale = n_in / n_out
    lo = torch.arange(n_out, dtype=torch.float64)[:, None] * scale
    hi = lo + scale
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(hi, j + 1) - torch.maximum(lo, j)).clamp(min=0.0)
    return overlap / scale


def resize_images(
    x: torch.Tensor,
    image_shape: tuple[int, int],
    size: tuple[int, int] = (16, 16),
    *,
    crop: int = 0,
) -> torch.Tensor:
    """Crop ``crop`` pixels from every border, then area-average to ``size``; flatten.

    Args:
        x: images of shape (N, H*W) (rows as in :class:`~insitu.data.Dataset`) or (N, H, W).
        image_shape: (H, W).
        size: (height, width) of the result.
        crop: pixels removed from each of the four borders before resizing. The default 0
            keeps the whole image. For MNIST use ``crop=2``: the digits lie in the central
            20x20 box of the 28x28 image, so the 24x24 crop loses only empty border, and
            24x24 -> 16x16 averages 1.5 x 1.5 input pixels into each output pixel.

    Area averaging is exact: an output pixel is the mean of the input over its footprint,
    with fractional weights where the footprint cuts an input pixel (non-integer ratios such
    as 24 -> 16). For integer ratios this is plain block averaging; the mean intensity of
    every image is kept (up to float rounding). Enlarging repeats pixels.

    Returns:
        float32 of shape (N, size[0] * size[1]), on the device of ``x``.

    Raises:
        ConfigError: shapes that do not match, or a crop that leaves no pixels.
    """
    h, w = (int(v) for v in image_shape)
    out_h, out_w = (int(v) for v in size)
    if h < 1 or w < 1 or out_h < 1 or out_w < 1:
        raise ConfigError(f"image_shape {image_shape} and size {size} must be positive")
    check_count("crop", crop, 0)
    if x.ndim == 2 and x.shape[1] == h * w:
        images = x.reshape(x.shape[0], h, w)
    elif x.ndim == 3 and tuple(x.shape[1:]) == (h, w):
        images = x
    else:
        raise ConfigError(
            f"images must have shape (N, {h * w}) or (N, {h}, {w}) for image_shape "
            f"{(h, w)}, got {tuple(x.shape)}"
        )
    if 2 * crop >= min(h, w):
        raise ConfigError(f"crop = {crop} removes every pixel of a {h}x{w} image")
    images = images[:, crop : h - crop, crop : w - crop].to(torch.float64)
    rows = _area_matrix(images.shape[1], out_h).to(images.device)
    cols = _area_matrix(images.shape[2], out_w).to(images.device)
    resized = rows @ images @ cols.T
    return resized.reshape(x.shape[0], out_h * out_w).to(torch.float32)


def shift_images(
    spikes: torch.Tensor,
    shape: tuple[int, ...],
    max_shift: int,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """Translate every sample's picture by a random whole number of pixels (augmentation).

    ``spikes`` is (N, T, F) with the F channels laid out as ``shape`` = (height, width) (or
    (channels, height, width)); each sample moves by (dy, dx) drawn uniformly from
    [-max_shift, max_shift]; what leaves the picture is lost, what enters is silent. Returns a
    new tensor of the same dtype; ``max_shift = 0`` returns a copy and draws nothing.

    Raises:
        ConfigError: a bad shape or a negative ``max_shift``.
    """
    if spikes.ndim != 3 or len(shape) not in (2, 3) or math.prod(shape) != spikes.shape[-1]:
        raise ConfigError(
            f"spikes of shape {tuple(spikes.shape)} cannot be laid out as pictures {shape}"
        )
    check_count("max_shift", max_shift, 0)
    if max_shift == 0:
        return spikes.clone()
    n, t = spikes.shape[:2]
    pics = spikes.reshape(n, t, -1, shape[-2], shape[-1])
    out = torch.zeros_like(pics)
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)
    h, w = shape[-2], shape[-1]
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            src = pics[rows][..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            dst = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
            out[rows, :, :, dst[0], dst[1]] = src
    return out.reshape(spikes.shape)
