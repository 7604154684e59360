"""The mean step curves of a pulse-response fit (:mod:`insitu.devices.fit`): per device and
direction, the step magnitude against the conductance the pulse found, for each response model
(linear-step and constant-step by least squares, soft-bounds through zero at the bound,
power-step by L-BFGS)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from insitu.devices.params import ResponseModel
from insitu.errors import DataError


@dataclass(frozen=True)
class Lines:
    """Per device and direction (index 0 up, 1 down), the mean step magnitude of each model:
    ``a + b * g`` (linear-step), ``mean`` (constant-step), ``soft * distance to the bound``
    (soft-bounds, with the bounds ``lo``, ``hi``)."""

    a: np.ndarray  # (devices, 2)
    b: np.ndarray  # (devices, 2)
    cov: np.ndarray  # (devices, 2, 2, 2): covariance of (a, b)
    mean: np.ndarray  # (devices, 2): mean step magnitude (the constant-step fit)
    mean_var: np.ndarray  # (devices, 2): its variance
    soft: np.ndarray  # (devices, 2): step per unit distance to the bound (soft-bounds fit)
    soft_var: np.ndarray  # (devices, 2): its variance
    lo: np.ndarray  # (devices,): lower saturation level
    hi: np.ndarray  # (devices,): upper saturation level
    # Power step: magnitude c * (distance to the point where the step vanishes) ** p.
    power_c: np.ndarray | None = None  # (devices, 2)
    power_g: np.ndarray | None = None  # (devices, 2): where the up / down step vanishes
    power_p: float = 1.0

    def _power(self, dev: np.ndarray, d: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, ...]:
        assert self.power_c is not None and self.power_g is not None
        c, vanish = self.power_c[dev, d], self.power_g[dev, d]
        dist = np.clip(np.where(d == 0, vanish - g, g - vanish), 0.0, None)
        return c, dist

    def magnitude(
        self, model: ResponseModel, dev: np.ndarray, d: np.ndarray, g: np.ndarray
    ) -> np.ndarray:
        if model is ResponseModel.CONSTANT_STEP:
            return np.asarray(self.mean[dev, d])
        if model is ResponseModel.SOFT_BOUNDS:
            return np.asarray(
                self.soft[dev, d] * np.where(d == 0, self.hi[dev] - g, g - self.lo[dev])
            )
        if model is ResponseModel.POWER_STEP:
            c, dist = self._power(dev, d, g)
            return np.asarray(c * dist**self.power_p)
        return np.asarray(self.a[dev, d] + self.b[dev, d] * g)

    def slope(
        self, model: ResponseModel, dev: np.ndarray, d: np.ndarray, g: np.ndarray
    ) -> np.ndarray:
        """d(magnitude)/dg of each step's model."""
        if model is ResponseModel.POWER_STEP:
            c, dist = self._power(dev, d, g)
            rate = self.power_p * c * dist ** (self.power_p - 1)
            return np.asarray(np.where(d == 0, -rate, rate))
        if model is ResponseModel.CONSTANT_STEP:
            return np.zeros(len(dev))
        if model is ResponseModel.SOFT_BOUNDS:
            return np.asarray(np.where(d == 0, -self.soft[dev, d], self.soft[dev, d]))
        return np.asarray(self.b[dev, d])


def fit_lines(
    dev: np.ndarray,
    d: np.ndarray,
    g0: np.ndarray,
    mag: np.ndarray,
    use: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    labels: list[str],
) -> Lines:
    n_dev = len(lo)
    a = np.zeros((n_dev, 2))
    soft = np.zeros((n_dev, 2))
    soft_var = np.zeros((n_dev, 2))
    b = np.zeros((n_dev, 2))
    cov = np.zeros((n_dev, 2, 2, 2))
    mean = np.zeros((n_dev, 2))
    mean_var = np.zeros((n_dev, 2))
    for i in range(n_dev):
        for j in range(2):
            sel = use & (dev == i) & (d == j)
            x, y = g0[sel], mag[sel]
            if len(y) < 3:
                raise DataError(
                    f"device {labels[i]!r}: {len(y)} {'up' if j == 0 else 'down'} steps away "
                    "from its bounds; a fit needs at least 3 (give it more pulses)"
                )
            design = np.stack([np.ones_like(x), x], axis=1)
            coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
            if rank < 2:  # every step from one conductance: no slope to see
                coef = np.array([y.mean(), 0.0])
            resid = y - design @ coef
            s2 = float(resid @ resid) / max(len(y) - 2, 1)
            a[i, j], b[i, j] = coef
            cov[i, j] = s2 * np.linalg.pinv(design.T @ design)
            mean[i, j] = y.mean()
            mean_var[i, j] = y.var(ddof=1) / len(y)
            # Soft bounds: the step is proportional to the distance to the bound ahead.
            dist = hi[i] - x if j == 0 else x - lo[i]
            dd = float(dist @ dist)
            soft[i, j] = float(dist @ y) / dd if dd > 0 else 0.0
            left = y - soft[i, j] * dist
            soft_var[i, j] = float(left @ left) / max(len(y) - 1, 1) / dd if dd > 0 else 0.0
    return Lines(a, b, cov, mean, mean_var, soft, soft_var, lo, hi)


def predicted_steps(
    model: ResponseModel,
    lines: Lines,
    dev: np.ndarray,
    d: np.ndarray,
    sign: np.ndarray,
    g0: np.ndarray,
) -> np.ndarray:
    """Mean step of every pulse, clipped at the model's bounds."""
    m = np.clip(lines.magnitude(model, dev, d, g0), 0.0, None)
    return np.asarray(np.clip(g0 + sign * m, lines.lo[dev], lines.hi[dev]) - g0)


def fit_power(
    lines: Lines, dev: np.ndarray, d: np.ndarray, g0: np.ndarray, mag: np.ndarray, use: np.ndarray
) -> Lines:
    """The power-step fit: ``c * distance**p`` per device and direction, one exponent ``p`` for
    all devices, by least squares (torch's L-BFGS), started from the straight lines (p = 1)."""
    n = len(lines.lo)
    span = lines.hi - lines.lo
    x = torch.as_tensor(g0[use], dtype=torch.float64)
    y = torch.as_tensor(mag[use], dtype=torch.float64)
    di, dd = torch.as_tensor(dev[use]), torch.as_tensor(d[use])
    # The step must not vanish inside the steps seen: the vanishing point lies beyond them.
    edge = np.zeros((n, 2))
    for i in range(n):
        edge[i, 0] = g0[use & (dev == i) & (d == 0)].max()
        edge[i, 1] = g0[use & (dev == i) & (d == 1)].min()
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = -lines.a / lines.b
    beyond = np.stack([cross[:, 0] - edge[:, 0], edge[:, 1] - cross[:, 1]], axis=1)
    ok = (np.stack([lines.b[:, 0] < 0, lines.b[:, 1] > 0], axis=1)) & (beyond > 0)
    beyond = np.where(ok, beyond, span[:, None])
    start_c = np.where(ok, np.abs(lines.b), lines.mean / (beyond + 0.5 * span[:, None]))
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)
    edge_t = torch.as_tensor(edge)
    log_beyond = torch.tensor(np.log(beyond), requires_grad=True)
    log_c = torch.tensor(np.log(np.clip(start_c, 1e-300, None)), requires_grad=True)
    log_p = torch.zeros((), dtype=torch.float64, requires_grad=True)
    weight = 1 / (y.var() * len(y))

    def model() -> torch.Tensor:
        vanish = edge_t + sign * torch.exp(log_beyond)
        dist = (vanish[di, dd] - x) * sign[dd]
        return torch.exp(log_c[di, dd]) * dist.clamp(min=1e-12) ** torch.exp(log_p)

    opt = torch.optim.LBFGS([log_beyond, log_c, log_p], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = weight * ((y - model()) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        vanish = (edge_t + sign * torch.exp(log_beyond)).numpy()
        return dataclasses.replace(
            lines,
            power_c=torch.exp(log_c).numpy(),
            power_g=vanish,
            power_p=float(torch.exp(log_p)),
        )
