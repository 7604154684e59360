"""Event lists (time, channel) binned into dense spike tensors, and channel jitter.

Event cameras (N-MNIST) and cochlea models (SHD) emit events; spiking networks here take
dense (N, T, F) tensors of 0/1. All samples are binned in one vectorised call; tonic's
``ToFrame`` gives the same frames (after ``> 0``) one sample at a time, and is an optional
dependency (the ``[tonic]`` extra).

* :func:`events_to_frames` / :func:`events_to_frame_batch`: bin events into spike tensors.
* :func:`jitter_channels`: move each spike of a dense tensor to a randomly nearby channel,
  the channel-jitter augmentation, redrawn at will (e.g. every epoch).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from insitu.errors import ConfigError, check_count, check_range

__all__ = ["events_to_frame_batch", "events_to_frames", "jitter_channels"]

#: The dtypes a dense spike tensor may have.
SPIKE_DTYPES = (torch.float32, torch.bool)


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in SPIKE_DTYPES:
        raise ConfigError(f"spike tensors are float32 or bool, got dtype={dtype}")


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
    check_count("n_samples", n_samples, 0)
    check_count("n_units", n_units, 1)
    check_count("time_steps", time_steps, 1)
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
