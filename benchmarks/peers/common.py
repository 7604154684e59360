"""What every contender script shares: MNIST from its IDX files, the sample order, the clock.

Contenders run under different Python environments (the project's ``.venv`` and the peers'
``.venv-peers``), so this module needs nothing beyond numpy and torch. Every contender trains
on the same 60,000 images in the same seeded order, times its training after a warm-up, and
prints one JSON object as the last line of its standard output.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = Path(os.environ.get("INSITU_DATA", ROOT.parent / "shared" / "data"))


def _idx(path: Path) -> np.ndarray:
    """Read one (gzipped) IDX file: magic, dimension sizes, then unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load_mnist(data_dir: Path, name: str = "mnist") -> dict[str, torch.Tensor]:
    """MNIST (or Fashion-MNIST) as flat float32 images in [0, 1] and int64 labels."""
    folder = data_dir / name
    if not folder.is_dir():
        raise SystemExit(f"no {name} folder under {data_dir}; pass --data-dir (see its README)")
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        x = _idx(folder / f"{stem}-images-idx3-ubyte.gz").reshape(-1, 784)
        y = _idx(folder / f"{stem}-labels-idx1-ubyte.gz")
        out[f"x_{split}"] = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))
        out[f"y_{split}"] = torch.from_numpy(y.astype(np.int64))
    return out


def sample_order(n: int, seed: int) -> torch.Tensor:
    """The training order every contender uses for ``seed`` (numpy's, so all venvs agree)."""
    return torch.from_numpy(np.random.default_rng(seed).permutation(n))


def parser(doc: str) -> argparse.ArgumentParser:
    """Options every crossbar contender takes."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=60000, help="training samples (one epoch)")
    p.add_argument("--warmup", type=int, default=1000, help="first samples, trained untimed")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-test", action="store_true", help="skip the test-set accuracy")
    return p


def train_timed(
    step: Callable[[torch.Tensor, torch.Tensor], float],
    data: dict[str, torch.Tensor],
    args: argparse.Namespace,
    per_step_samples: int = 1,
) -> dict[str, Any]:
    """Train ``args.samples`` samples in mini-batches; time all but the first ``args.warmup``.

    ``step(x, y)`` trains one mini-batch and returns its loss. ``per_step_samples`` counts the
    samples one batch row stands for (chip instances trained at once).
    """
    order = sample_order(data["x_train"].shape[0], args.seed)
    n = min(args.samples, order.numel())
    b = args.batch
    losses: list[float] = []
    start = None
    cpu_start = 0.0
    timed = 0
    for i in range(0, n - b + 1, b):
        if start is None and i >= args.warmup:
            start = time.perf_counter()
            cpu_start = time.process_time()
        idx = order[i : i + b]
        loss = step(data["x_train"][idx], data["y_train"][idx])
        if start is not None:
            timed += b
        if (i // b) % 100 == 0:
            losses.append(loss)
    elapsed = time.perf_counter() - start if start is not None else float("nan")
    cpu = time.process_time() - cpu_start if start is not None else float("nan")
    head = float(np.mean(losses[: max(1, len(losses) // 10)]))
    tail = float(np.mean(losses[-max(1, len(losses) // 10) :]))
    return {
        "samples_trained": n - n % b,
        "samples_timed": timed,
        "seconds_timed": elapsed,
        "samples_per_s": timed * per_step_samples / elapsed if timed else float("nan"),
        # Per second of this process's CPU time: less sensitive to other load on the machine.
        "samples_per_cpu_s": timed * per_step_samples / cpu if timed else float("nan"),
        "loss_first_tenth": head,
        "loss_last_tenth": tail,
    }


def epochs_timed(
    step: Callable[[torch.Tensor], float], n: int, epochs: int, batch: int, warmup: int, seed: int
) -> dict[str, Any]:
    """Train ``epochs`` passes over ``n`` samples in shuffled mini-batches (numpy's order for
    ``seed``); ``step(indices)`` trains one batch and returns its loss. All batches after the
    first ``warmup`` samples are timed (wall and CPU)."""
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    timed, seconds, cpu = 0, 0.0, 0.0
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        for i in range(0, order.numel() - batch + 1, batch):
            t0, c0 = time.perf_counter(), time.process_time()
            losses.append(step(order[i : i + batch]))
            if len(losses) * batch > warmup:  # past the untimed first batches
                seconds += time.perf_counter() - t0
                cpu += time.process_time() - c0
                timed += batch
    tenth = max(1, len(losses) // 10)
    return {
        "samples_timed": timed,
        "seconds_timed": seconds,
        "samples_per_s": timed / seconds,
        "samples_per_cpu_s": timed / cpu,
        "loss_first_tenth": float(np.mean(losses[:tenth])),
        "loss_last_tenth": float(np.mean(losses[-tenth:])),
        "epochs": epochs,
    }


def report(result: dict[str, Any]) -> None:
    """Add peak memory and versions, then print the result as the last line of stdout."""
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch"] = torch.__version__
    result["python"] = sys.version.split()[0]
    print(json.dumps(result), flush=True)
