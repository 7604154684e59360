"""Turning images and event lists into spike tensors for spiking networks.

Spike tensors are dense, of shape (N, T, F) (samples, time steps, input channels), with
value 1 where a channel spikes in a time step and 0 elsewhere. Time is counted in **steps**:
the physical length of a step (``dt``) is the caller's choice and is recorded by
:class:`~insitu.data.spikes.SpikeDataset`.

* :func:`resize_images`: crop and area-average images (MNIST 28x28 -> 16x16 inputs, as in
  Cramer et al. 2022, PNAS 119(4), e2109194119, where 256 inputs feed the BrainScaleS-2 chip).
* :func:`latency_spike_times` / :func:`latency_encode`: one spike per input at
  ``t = tau * ln(x / (x - threshold))`` for ``x > threshold`` (no spike otherwise), the
  time-to-first-spike code of the same paper: bright pixels spike early, dim ones late.
* :func:`rate_encode`: independent Bernoulli spikes with probability ``max_rate * x`` per step.
* :func:`events_to_frames` / :func:`events_to_frame_batch`: event lists (time, channel) from
  event cameras (N-MNIST) or cochlea models (SHD) binned into dense spike tensors.
* :func:`jitter_channels`: move each spike of a dense tensor to a randomly nearby channel,
  the channel-jitter augmentation, redrawn at will (e.g. every epoch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.errors import ConfigError, check_range

__all__ = [
    "events_to_frame_batch",
    "events_to_frames",
    "jitter_channels",
    "latency_encode",
    "latency_spike_times",
    "rate_encode",
    "resize_images",
    "shift_images",
]

_SPIKE_DTYPES = (torch.float32, torch.bool)


def _check_count(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} = {value!r} must be an integer")
    check_range(name, int(value), low=low)


def _check_unit_interval(name: str, x: torch.Tensor) -> None:
    if not x.is_floating_point():
        raise ConfigError(
            f"{name} must be a floating-point tensor with values in [0, 1], got {x.dtype}"
        )
    if x.numel() == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)) or bool(torch.isnan(x).any()):
        raise ConfigError(f"{name} holds NaN or infinite values; expected values in [0, 1]")
    if lo < 0.0 or hi > 1.0:
        raise ConfigError(
            f"{name} must have values in [0, 1], got values in [{lo:g}, {hi:g}] "
            "(scale pixels to [0, 1] first)"
        )


def _check_2d(name: str, x: torch.Tensor) -> None:
    if x.ndim != 2:
        raise ConfigError(f"{name} must have shape (N, F), got {tuple(x.shape)}")


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in _SPIKE_DTYPES:
        raise ConfigError(f"spike tensors are float32 or bool, got dtype={dtype}")


# ---------------------------------------------------------------------------------------------
# Images


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
    _check_count("crop", crop, 0)
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


# ---------------------------------------------------------------------------------------------
# Encoders


def latency_spike_times(x: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
    """Continuous spike times ``tau * ln(x / (x - threshold))``, in units of ``tau``.

    ``x`` has values in [0, 1]; inputs at or below ``threshold`` (compared at the precision
    of ``x``) never spike and get ``inf``. The time falls from infinity just above the threshold to
    ``tau * ln(1 / (1 - threshold))`` at ``x = 1``. Float64 of the shape of ``x``.

    Raises:
        ConfigError: ``x`` outside [0, 1], ``tau`` not positive or ``threshold`` not in [0, 1).
    """
    _check_unit_interval("x", x)
    check_range("tau", tau, low=0.0, low_open=True)
    if not math.isfinite(tau):
        raise ConfigError(f"tau = {tau!r} must be finite")
    check_range("threshold", threshold, low=0.0, high=1.0, high_open=True)
    # The threshold at the precision of x, so that float32 0.2 is not above a threshold of 0.2.
    level = float(torch.tensor(threshold, dtype=x.dtype))
    x64 = x.to(torch.float64)
    above = x64 > level
    safe = torch.where(above, x64, torch.ones_like(x64))  # keeps log finite where masked
    times = tau * torch.log(safe / (safe - level))
    return torch.where(above, times, torch.full_like(times, math.inf))


def latency_encode(x: torch.Tensor, time_steps: int, tau: float, threshold: float) -> torch.Tensor:
    """Time-to-first-spike code: at most one spike per input feature.

    Feature ``f`` of sample ``n`` spikes once, in step ``floor(t)`` with
    ``t = tau * ln(x / (x - threshold))`` (see :func:`latency_spike_times`), if
    ``x > threshold`` and that step is before ``time_steps``; otherwise it stays silent.

    Args:
        x: float tensor of shape (N, F) with values in [0, 1] (e.g. pixel intensities).
        time_steps: T, the number of steps of the result.
        tau: the encoding time constant, **in time steps**.
        threshold: the input level below which nothing spikes, in [0, 1).

    Returns:
        float32 of shape (N, T, F) holding 0 and 1, on the device of ``x``.

    Raises:
        ConfigError: a bad shape or argument; the message names it.
    """
    _check_2d("x", x)
    _check_count("time_steps", time_steps, 1)
    times = latency_spike_times(x, tau, threshold)
    steps = torch.floor(times)
    fires = steps < time_steps  # inf (no spike) compares False
    index = torch.where(fires, steps, torch.zeros_like(steps)).to(torch.int64)
    out = torch.zeros(x.shape[0], time_steps, x.shape[1], dtype=torch.float32, device=x.device)
    out.scatter_(1, index[:, None, :], fires[:, None, :].to(torch.float32))
    return out


def rate_encode(
    x: torch.Tensor, time_steps: int, max_rate: float, *, generator: torch.Generator
) -> torch.Tensor:
    """Bernoulli (discrete Poisson) rate code.

    In every step, feature ``f`` of sample ``n`` spikes with probability
    ``max_rate * x[n, f]``, independently of all other steps and features.

    Args:
        x: float tensor of shape (N, F) with values in [0, 1].
        time_steps: T, the number of steps of the result.
        max_rate: spike probability per step for ``x = 1``, in [0, 1] (spikes per step).
        generator: the source of randomness; must live on the device of ``x``.

    Returns:
        float32 of shape (N, T, F) holding 0 and 1.

    Raises:
        ConfigError: a bad shape or argument.
    """
    _check_2d("x", x)
    _check_count("time_steps", time_steps, 1)
    check_range("max_rate", max_rate, low=0.0, high=1.0)
    _check_unit_interval("x", x)
    p = (max_rate * x.to(torch.float32))[:, None, :]
    draws = torch.rand(x.shape[0], time_steps, x.shape[1], generator=generator, device=x.device)
    return (draws < p).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# Events


def _as_numpy(name: str, values: Any) -> npt.NDArray[Any]:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _event_bins(times: npt.NDArray[Any], dt: float, t_start: float) -> npt.NDArray[np.int64]:
    """floor((t - t_start) / dt) per event; exact integer arithmetic for integer inputs."""
    if (
        np.issubdtype(times.dtype, np.integer)
        and float(dt).is_integer()
        and float(t_start).is_integer()
    ):
        return (times.astype(np.int64) - int(t_start)) // int(dt)
    shifted = (times.astype(np.float64) - float(t_start)) / float(dt)
    return np.floor(shifted).astype(np.int64)


def events_to_frame_batch(
    sample: Any,
    times: Any,
    units: Any,
    *,
    n_samples: int,
    n_units: int,
    dt: float,
    time_steps: int,
    t_start: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Bin the events of many samples into one dense spike tensor of shape (N, T, n_units).

    Event ``k`` (sample ``sample[k]``, time ``times[k]``, channel ``units[k]``) sets
    ``out[sample[k], floor((times[k] - t_start) / dt), units[k]] = 1``. Events before
    ``t_start`` or at or after ``t_start + time_steps * dt`` are dropped. Events of one channel
    in one step merge into a single spike (the tensor is binary). ``dt`` and ``t_start`` are
    in the unit of ``times`` (microseconds for N-MNIST, seconds for SHD); integer times with
    integer ``dt`` are binned exactly, float times in float64 (a time exactly on a bin edge
    may land on either side of it by rounding).

    Args:
        sample, times, units: 1-D arrays or tensors of equal length.
        n_samples: N; ``sample`` must lie in [0, N).
        n_units: channels; ``units`` must be integers in [0, n_units).
        dt: bin width, > 0.
        time_steps: T, number of bins.
        t_start: the time at which bin 0 begins.
        dtype: float32 or bool.

    Raises:
        ConfigError: mismatched lengths, out-of-range samples or channels, non-finite times,
            or a bad argument.
    """
    _check_count("n_samples", n_samples, 0)
    _check_count("n_units", n_units, 1)
    _check_count("time_steps", time_steps, 1)
    check_range("dt", dt, low=0.0, low_open=True)
    if not (math.isfinite(dt) and math.isfinite(t_start)):
        raise ConfigError(f"dt = {dt!r} and t_start = {t_start!r} must be finite")
    _check_dtype(dtype)
    s, t, u = _as_numpy("sample", sample), _as_numpy("times", times), _as_numpy("units", units)
    if not (len(s) == len(t) == len(u)):
        raise ConfigError(
            f"sample, times and units must have equal lengths, got {len(s)}, {len(t)}, {len(u)}"
        )
    for name, arr in (("sample", s), ("units", u)):
        if len(arr) and not np.issubdtype(arr.dtype, np.integer):
            raise ConfigError(f"{name} must hold integers, got dtype {arr.dtype}")
    if len(t) and not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise ConfigError(f"times must be numbers, got dtype {t.dtype}")
    out = torch.zeros(n_samples, time_steps, n_units, dtype=dtype)
    if len(t) == 0:
        return out
    if np.issubdtype(t.dtype, np.floating) and not np.isfinite(t).all():
        raise ConfigError("times hold NaN or infinite values")
    if int(u.min()) < 0 or int(u.max()) >= n_units:
        raise ConfigError(
            f"units must lie in [0, {n_units}), got values in [{int(u.min())}, {int(u.max())}]"
        )
    if int(s.min()) < 0 or int(s.max()) >= n_samples:
        raise ConfigError(
            f"sample must lie in [0, {n_samples}), got values in [{int(s.min())}, {int(s.max())}]"
        )
    bins = _event_bins(t, dt, t_start)
    keep = (bins >= 0) & (bins < time_steps)
    flat = (s[keep].astype(np.int64) * time_steps + bins[keep]) * n_units + u[keep].astype(np.int64)
    out.view(-1)[torch.from_numpy(flat)] = True if dtype == torch.bool else 1.0
    return out


def events_to_frames(
    times: Any,
    units: Any,
    *,
    n_units: int,
    dt: float,
    time_steps: int,
    t_start: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Bin one sample's events into a dense spike tensor of shape (T, n_units).

    A spike at time ``t`` in channel ``u`` lands in step ``floor((t - t_start) / dt)``; see
    :func:`events_to_frame_batch` for the rules (dropped events, merging, units of time).
    """
    t = _as_numpy("times", times)
    return events_to_frame_batch(
        np.zeros(len(t), dtype=np.int64),
        t,
        units,
        n_samples=1,
        n_units=n_units,
        dt=dt,
        time_steps=time_steps,
        t_start=t_start,
        dtype=dtype,
    )[0]


def jitter_channels(
    spikes: torch.Tensor, std: float, *, generator: torch.Generator
) -> torch.Tensor:
    """Move every spike to channel ``round(f + std * z)``, ``z`` standard normal per spike.

    ``spikes`` is (N, T, F), float32 or bool; ``std`` is in channels of this tensor. Spikes
    moved outside [0, F) are lost, spikes moved onto the same channel and step merge. Time
    steps and samples are untouched. Returns a new tensor of the same dtype; ``std = 0``
    returns an unchanged copy and draws nothing. ``generator`` must live on the device of
    ``spikes``.

    Raises:
        ConfigError: a tensor that is not (N, T, F) float32/bool, or ``std`` < 0.
    """
    if spikes.ndim != 3:
        raise ConfigError(f"spikes must have shape (N, T, F), got {tuple(spikes.shape)}")
    _check_dtype(spikes.dtype)
    check_range("std", std, low=0.0)
    if std == 0:
        return spikes.clone()
    n, t, f = (int(v) for v in spikes.shape)
    idx = spikes.reshape(-1, f).nonzero()  # (K, 2): row (sample*T + step), channel
    shift = torch.randn(idx.shape[0], generator=generator, device=spikes.device) * std
    channel = torch.round(idx[:, 1].to(torch.float64) + shift.to(torch.float64)).to(torch.int64)
    keep = (channel >= 0) & (channel < f)
    out = torch.zeros_like(spikes)
    flat = out.view(-1)
    flat[idx[keep, 0] * f + channel[keep]] = True if spikes.dtype == torch.bool else 1.0
    return out.reshape(n, t, f)


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
    _check_count("max_shift", max_shift, 0)
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
