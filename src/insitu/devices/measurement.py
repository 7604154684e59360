"""Pulse-response measurements of devices: read them from CSV, write them, simulate them.

File format (CSV, comma separated, one header line; ``#`` lines are comments)::

    device,cycle,pulse,direction,conductance
    d01,1,0,up,0.0012
    d01,1,1,up,0.0031
    ...
    d01,1,120,down,0.9710

- ``device``: any label of one physical device (text).
- ``cycle``: integer label of one pulse sequence on that device (e.g. one up/down sweep).
- ``pulse``: integer pulse number within the cycle; consecutive rows of a cycle must number
  consecutive pulses (one read after every pulse). Rows may come in any order.
- ``direction``: the pulse applied just before this read: ``up``/``+1``/``1``/``potentiate``,
  ``down``/``-1``/``depress``, or ``none``/``0``/``read`` (a read with no pulse before it, e.g.
  the first read of a cycle). The first row of each cycle is only the starting state.
- ``conductance``: the read after the pulse, in the file's unit. The header may name the unit
  as ``conductance (uS)`` or ``conductance [uS]``; it is recorded in the fitted preset.

Extra columns are ignored; column names are matched case-insensitively. A file that breaks
these rules raises :class:`~insitu.errors.DataError` naming the file, the line and the fault.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from insitu.devices.params import DeviceParams
from insitu.devices.response import apply_pulses, read_conductance, sample_device_array
from insitu.errors import DataError

COLUMNS = ("device", "cycle", "pulse", "direction", "conductance")
DIRECTIONS = {
    "up": 1,
    "+1": 1,
    "1": 1,
    "potentiate": 1,
    "down": -1,
    "-1": -1,
    "depress": -1,
    "none": 0,
    "0": 0,
    "read": 0,
}
# A device needs at least this many pulses (in each direction) to be fitted.
MIN_PULSES = 5
_UNIT = re.compile(r"^conductance\s*[\(\[]\s*(.+?)\s*[\)\]]$")


@dataclass(frozen=True)
class Measurement:
    """Reads of several devices after each of a sequence of pulses, sorted by device, cycle
    and pulse (one entry per read).

    Attributes:
        devices: device labels; ``device`` indexes them.
        device, cycle, pulse: integer arrays (device index, cycle label, pulse number).
        direction: +1 potentiating, -1 depressing, 0 no pulse before this read.
        conductance: the reads (``unit``).
        unit: the conductance unit (from the header, or ``"file unit"``).
        source: where the reads come from (a path, or a description of a simulation).
    """

    devices: tuple[str, ...]
    device: np.ndarray
    cycle: np.ndarray
    pulse: np.ndarray
    direction: np.ndarray
    conductance: np.ndarray
    unit: str = "file unit"
    source: str = ""

    def steps(self) -> tuple[np.ndarray, ...]:
        """Every pulse with the read before it: ``(index, device, direction, g_before, dg)``.

        ``index`` is the position of the read after the pulse; steps within one cycle only.
        """
        same = (self.device[1:] == self.device[:-1]) & (self.cycle[1:] == self.cycle[:-1])
        pulsed = same & (self.direction[1:] != 0)
        k = np.nonzero(pulsed)[0] + 1
        g = self.conductance
        return k, self.device[k], self.direction[k], g[k - 1], g[k] - g[k - 1]


def _fail(path: Path, line: int | None, what: str) -> DataError:
    where = f"{path}, line {line}" if line is not None else str(path)
    return DataError(f"{where}: {what}")


def _header(path: Path, row: list[str], line: int) -> tuple[dict[str, int], str]:
    names = [c.strip().lower() for c in row]
    index: dict[str, int] = {}
    unit = "file unit"
    for i, name in enumerate(names):
        m = _UNIT.match(name)
        if m:
            unit = row[i].strip()[m.start(1) : m.end(1)]
            name = "conductance"
        if name in COLUMNS and name not in index:
            index[name] = i
    missing = [c for c in COLUMNS if c not in index]
    if missing:
        raise _fail(
            path,
            line,
            f"missing column(s) {', '.join(missing)}; the header needs "
            f"{', '.join(COLUMNS)} (got {', '.join(n for n in names if n) or 'nothing'})",
        )
    return index, unit


def read_measurement(path: str | Path) -> Measurement:
    """Read a pulse-response CSV (format in the module docstring)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise _fail(path, None, "not a text (UTF-8) CSV file") from None
    rows = csv.reader(text.splitlines())
    index: dict[str, int] | None = None
    unit = "file unit"
    labels: dict[str, int] = {}
    seen: dict[tuple[int, int, int], int] = {}
    cols: list[list[float]] = [[], [], [], [], []]
    lines: list[int] = []
    try:
        for line, row in enumerate(rows, start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if index is None:
                index, unit = _header(path, row, line)
                continue
            need = max(index.values()) + 1
            if len(row) < need:
                raise _fail(path, line, f"{len(row)} fields, the header has at least {need}")
            cell = {c: row[i].strip() for c, i in index.items()}
            if not cell["device"]:
                raise _fail(path, line, "empty device label")
            dev = labels.setdefault(cell["device"], len(labels))
            ints = []
            for c in ("cycle", "pulse"):
                try:
                    ints.append(int(cell[c]))
                except ValueError:
                    raise _fail(path, line, f"{c} {cell[c]!r} is not an integer") from None
            direction = DIRECTIONS.get(cell["direction"].lower())
            if direction is None:
                raise _fail(
                    path,
                    line,
                    f"unknown direction {cell['direction']!r}; use up/+1, down/-1 or none/0",
                )
            try:
                g = float(cell["conductance"])
            except ValueError:
                raise _fail(
                    path, line, f"conductance {cell['conductance']!r} is not a number"
                ) from None
            if not math.isfinite(g):
                raise _fail(path, line, f"conductance {cell['conductance']!r} is not finite")
            key = (dev, ints[0], ints[1])
            if key in seen:
                raise _fail(
                    path,
                    line,
                    f"device {cell['device']!r} cycle {ints[0]} pulse {ints[1]} again "
                    f"(first on line {seen[key]})",
                )
            seen[key] = line
            for col, v in zip(cols, (dev, ints[0], ints[1], direction, g), strict=True):
                col.append(v)
            lines.append(line)
    except csv.Error as err:
        raise _fail(path, None, f"not a readable CSV file ({err})") from None
    if index is None:
        raise _fail(path, None, "empty file: no header and no reads")
    if not lines:
        raise _fail(path, None, "no reads after the header")
    device, cycle, pulse, sign = (np.asarray(c, dtype=np.int64) for c in cols[:4])
    order = np.lexsort((pulse, cycle, device))
    m = Measurement(
        devices=tuple(labels),
        device=device[order],
        cycle=cycle[order],
        pulse=pulse[order],
        direction=sign[order].astype(np.int8),
        conductance=np.asarray(cols[4], dtype=np.float64)[order],
        unit=unit,
        source=str(path),
    )
    _check(path, m, np.asarray(lines)[order])
    return m


def _check(path: Path, m: Measurement, lines: np.ndarray) -> None:
    """Consecutive pulse numbers within a cycle; enough pulses of each direction per device."""
    same = (m.device[1:] == m.device[:-1]) & (m.cycle[1:] == m.cycle[:-1])
    gap = same & (m.pulse[1:] != m.pulse[:-1] + 1)
    if gap.any():
        k = int(np.nonzero(gap)[0][0]) + 1
        raise _fail(
            path,
            int(lines[k]),
            f"device {m.devices[m.device[k]]!r} cycle {m.cycle[k]}: pulse {m.pulse[k]} follows "
            f"pulse {m.pulse[k - 1]}; one read after every pulse is needed",
        )
    _, dev, direction, _, _ = m.steps()
    for i, label in enumerate(m.devices):
        for sign, word in ((1, "up"), (-1, "down")):
            n = int(((dev == i) & (direction == sign)).sum())
            if n < MIN_PULSES:
                first = int(lines[np.nonzero(m.device == i)[0][0]])
                raise _fail(
                    path,
                    first,
                    f"device {label!r} has {n} {word} pulse(s) after a read; "
                    f"a fit needs at least {MIN_PULSES} in each direction",
                )


def write_measurement(m: Measurement, path: str | Path) -> Path:
    """Write ``m`` as CSV (the format :func:`read_measurement` reads)."""
    from insitu.atomic import write_text

    words = {1: "up", -1: "down", 0: "none"}
    header = "conductance" if m.unit == "file unit" else f"conductance ({m.unit})"
    out = [f"device,cycle,pulse,direction,{header}"]
    for d, c, p, s, g in zip(
        m.device.tolist(),
        m.cycle.tolist(),
        m.pulse.tolist(),
        m.direction.tolist(),
        m.conductance.tolist(),
        strict=True,
    ):
        out.append(f"{m.devices[d]},{c},{p},{words[s]},{g!r}")
    write_text(path, "\n".join(out) + "\n")
    return Path(path)


def simulate_measurement(
    params: DeviceParams,
    devices: int,
    cycles: int,
    pulses: int,
    gen: torch.Generator,
) -> Measurement:
    """What a lab would measure on ``devices`` devices drawn from ``params``.

    Each cycle reads the device, applies ``pulses`` potentiating then ``pulses`` depressing
    pulses one by one (the exact pulse-by-pulse response) and reads after each. The first cycle
    starts at ``g_min`` of each device; later cycles where the previous one ended.
    """
    array = sample_device_array(params, (devices,), gen, device="cpu")
    array = array._replace(g_min=array.g_min.double(), g_max=array.g_max.double())
    g = array.g_min.clone()
    g = torch.where(array.stuck > 0, array.g_max, g)
    ones = torch.ones(devices, dtype=torch.int64)
    reads = []
    signs = []
    for _ in range(cycles):
        reads.append(read_conductance(params, array, g, gen))
        signs.append(0)
        for sign in (1, -1):
            for _ in range(pulses):
                g = apply_pulses(params, array, g, sign * ones, gen, exact=True)
                reads.append(read_conductance(params, array, g, gen))
                signs.append(sign)
    per_cycle = 2 * pulses + 1
    g_all = torch.stack(reads).T.reshape(devices, cycles, per_cycle)
    dev, cyc, pul = np.meshgrid(
        np.arange(devices), np.arange(1, cycles + 1), np.arange(per_cycle), indexing="ij"
    )
    direction = np.tile(np.asarray(signs[:per_cycle], dtype=np.int8), devices * cycles)
    return Measurement(
        devices=tuple(f"d{i:02d}" for i in range(devices)),
        device=dev.ravel(),
        cycle=cyc.ravel(),
        pulse=pul.ravel(),
        direction=direction,
        conductance=g_all.reshape(-1).numpy().astype(np.float64),
        unit=f"{params.name} unit",
        source=f"simulated from preset {params.name!r}: {devices} devices x {cycles} cycles of "
        f"{pulses} up then {pulses} down pulses",
    )
