"""Shared test settings."""

from __future__ import annotations

import torch

# Tests use small tensors: one thread avoids oversubscription on the shared 2-core machines.
torch.set_num_threads(1)
