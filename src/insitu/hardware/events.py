"""The chip's event log: counts of every hardware operation, priced later by insitu.energy."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import torch
from torch import Tensor


class Event(StrEnum):
    """Kinds of hardware events. Counts are totals over all chip instances."""

    MAC = "mac"  # analog multiply-accumulates in an array (one per device per MVM)
    DAC = "dac_conversion"  # input conversions (one per line driven per MVM)
    ADC = "adc_conversion"  # output conversions (one per line sensed per MVM)
    ARRAY_READ = "array_read"  # analog vector-matrix multiplications
    UPDATE = "parallel_update"  # parallel outer-product update cycles (one per rank-1 update)
    LINE_PULSE = "line_pulse"  # pulses sent down row/column lines during updates
    PULSE = "device_pulse"  # programming pulses received by devices
    DEVICE_READ = "device_read"  # single-device reads (measure, write-verify)
    PROGRAM_ITERATION = "program_iteration"  # write-verify iterations
    ACTIVATION = "activation"  # activation (or derivative) circuit evaluations
    DIGITAL_OP = "digital_op"  # digital periphery operations (scaling, error, softmax)
    STORED_VALUE = "stored_value"  # values held in periphery memory for later use
    # Spiking chips (insitu.hardware.spiking):
    SYNAPTIC_EVENT = "synaptic_event"  # spikes arriving at a synapse row x the neurons it drives
    NEURON_STEP = "neuron_step"  # neuron updates (neurons x time steps x samples)
    ADC_SAMPLE = "adc_sample"  # membrane voltages sampled by the ADC
    EMULATION_STEP = "emulation_step"  # time steps emulated (T per sample), each dt_seconds long
    HOST_BYTES_IN = "host_bytes_in"  # bytes host -> chip (weights 1 B each, input spikes 4 B)
    HOST_BYTES_OUT = "host_bytes_out"  # bytes chip -> host (spikes 4 B each, ADC samples 1 B)


class EventLog:
    """Running totals of hardware events.

    Counts that depend on data (pulses) are kept as tensors so that logging never forces a
    device synchronisation in a hot path; :meth:`counts` materialises them.
    """

    def __init__(self) -> None:
        self._ints: dict[str, int] = {}
        self._tensors: dict[str, Tensor] = {}

    def add(self, kind: Event | str, count: int | Tensor) -> None:
        """Add ``count`` events of ``kind``."""
        if not isinstance(count, Tensor):
            self.add_many(((kind, count),))
            return
        key = str(kind)
        prev = self._tensors.get(key)
        if prev is None:
            self._tensors[key] = count.detach().to(torch.float64).clone()
        else:
            prev.add_(count.detach())  # one in-place op: this runs per sample

    def add_many(self, counts: Iterable[tuple[Event | str, int]]) -> None:
        """Add whole-number counts of several kinds at once (the reads' hot path)."""
        ints = self._ints
        for kind, count in counts:
            key = str(kind)
            if count < 0:
                raise ValueError(f"event count for {key} must be >= 0, got {count}")
            ints[key] = ints.get(key, 0) + int(count)

    def counts(self) -> dict[str, float]:
        """Totals per event kind."""
        out: dict[str, float] = {k: float(v) for k, v in self._ints.items()}
        for k, t in self._tensors.items():
            out[k] = out.get(k, 0.0) + float(t.item())
        return dict(sorted(out.items()))

    def __getitem__(self, kind: Event | str) -> float:
        return self.counts().get(str(kind), 0.0)

    def reset(self) -> None:
        """Forget every count."""
        self._ints.clear()
        self._tensors.clear()

    def state_dict(self) -> dict[str, float]:
        """Counts for a checkpoint."""
        return self.counts()

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore counts saved by :meth:`state_dict`."""
        self.reset()
        for k, v in state.items():
            self._tensors[k] = torch.tensor(float(v), dtype=torch.float64)
