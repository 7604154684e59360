"""Spike codes: images (pixel values in [0, 1]) turned into spike tensors.

Spike tensors are dense, of shape (N, T, F) (samples, time steps, input channels), with
value 1 where a channel spikes in a time step and 0 elsewhere. Time is counted in **steps**:
the physical length of a step (``dt``) is the caller's choice and is recorded by
:class:`~insitu.data.spikes.SpikeDataset`. Pictures are resized in
:mod:`insitu.data.images`, event lists binned in :mod:`insitu.data.events`.

* :func:`latency_spike_times` / :func:`latency_encode`: one spike per input at
  ``t = tau * ln(x / (x - threshold))`` for ``x > threshold`` (no spike otherwise), the
  time-to-first-spike code of Cramer et al. 2022 (PNAS 119(4), e2109194119): bright pixels
  spike early, dim ones late.
* :func:`rate_encode`: independent Bernoulli spikes with probability ``max_rate * x`` per step.

Not snnTorch's ``spikegen``: its ``rate`` draws from torch's global generator (insitu's
draws come from a generator the trainer owns, so one seed fixes a run), and its ``latency``
rounds the time instead of flooring it, empties the whole last step (printing a warning)
whenever a time falls past the end, and puts time first, (T, N, F).
"""

from __future__ import annotations

import math

import torch

from insitu.errors import ConfigError, check_count, check_range

__all__ = ["latency_encode", "latency_spike_times", "rate_encode"]


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
    check_count("time_steps", time_steps, 1)
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
    check_count("time_steps", time_steps, 1)
    check_range("max_rate", max_rate, low=0.0, high=1.0)
    _check_unit_interval("x", x)
    p = (max_rate * x.to(torch.float32))[:, None, :]
    draws = torch.rand(x.shape[0], time_steps, x.shape[1], generator=generator, device=x.device)
    return (draws < p).to(torch.float32)
