"""Diagnostics of a crossbar trainer over training: device and signal statistics per instance.

Trains one configuration (any crossbar algorithm) and, every ``--every`` batches, prints and
records per chip instance: the running training loss, the output layer's true weights and
conductances (through the inspection hook: a diagnostic, not something an algorithm may do),
the share of devices at a conductance bound, the common mode (G+ + G-)/2 - g_ref, the pulses
per sample so far per layer, and, on a fixed probe batch, the share of saturated hidden units
and of output lines clipped by the ADC.

    .venv/bin/python benchmarks/diagnose_progressive.py --algorithm progressive \
        --hidden 256 --lr 0.05 --epochs 3 --data-dir ../shared/data --out runs/diag.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from insitu import atomic
from insitu.algorithms import make_trainer
from insitu.data import load_dataset
from insitu.experiments import make_config
from insitu.hardware import inspection as inspect


def tile_stats(tile: Any, g_ref: float) -> dict[str, list[float]]:
    """Per-instance statistics of one tile's true weights and conductances."""
    w = inspect.true_weights(tile)
    gs = inspect.conductances(tile)
    arrays = inspect.device_arrays(tile)
    out: dict[str, list[float]] = {
        "w_rms": w.pow(2).mean((1, 2)).sqrt().tolist(),
        "w_absmax": w.abs().amax((1, 2)).tolist(),
    }
    at_bound = []
    for g, a in zip(gs, arrays, strict=True):
        span = a.g_max - a.g_min
        near = ((a.g_max - g) < 0.02 * span) | ((g - a.g_min) < 0.02 * span)
        at_bound.append(near.to(torch.float32).mean((1, 2)))
    out["at_bound"] = torch.stack(at_bound).mean(0).tolist()
    if len(gs) == 2:
        cm = (gs[0] + gs[1]) / 2 - g_ref
        out["cm_mean"] = cm.mean((1, 2)).tolist()
        out["cm_rms"] = cm.pow(2).mean((1, 2)).sqrt().tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", default="progressive")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--hidden", nargs="+", type=int, default=[256])
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--every", type=int, default=1000, help="batches between records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="extra config fields k=json")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", type=Path, default=Path("runs/diagnose_progressive.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    values: dict[str, Any] = {
        "algorithm": args.algorithm,
        "dataset": args.dataset,
        "hidden": args.hidden,
        "lr": args.lr,
        "epochs": args.epochs,
        "instances": args.instances,
        "batch_size": args.batch_size,
        "seed": args.seed,
    }
    for item in args.set:
        key, _, raw = item.partition("=")
        values[key] = json.loads(raw)
    cfg = make_config(values)
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    trainer = make_trainer(
        cfg.algorithm,
        cfg.chip_config(ds.n_features, ds.n_outputs),
        instances=cfg.instances,
        seed=cfg.seed,
        lr=cfg.lr,
        options=cfg.algorithm_options,
    )
    chip = trainer.chip  # type: ignore[attr-defined]
    g_ref = cfg.device_params().g_ref
    x_tr, y_tr = ds.x_train, ds.y_train
    if args.limit_train is not None:
        x_tr, y_tr = x_tr[: args.limit_train], y_tr[: args.limit_train]
    probe = ds.x_train[-1000:]
    order = torch.Generator().manual_seed(cfg.seed + 1)
    records: list[dict[str, Any]] = []
    batches, seen, loss_acc, loss_n = 0, 0, torch.zeros(cfg.instances), 0
    last_pulses = [0.0] * chip.n_layers
    last_seen = 0
    for epoch in range(args.epochs):
        perm = torch.randperm(len(y_tr), generator=order)
        for start in range(0, len(y_tr), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            loss_acc += trainer.train_batch(x_tr[idx], y_tr[idx])
            loss_n += 1
            batches += 1
            seen += len(idx)
            if batches % args.every:
                continue
            with torch.no_grad():
                acts = chip.forward(probe)
            hidden = torch.cat([a.flatten(1) for a in acts[1:-1]], 1)
            bound = cfg.periphery.output_bound
            pulses = [float(inspect.pulse_counts(t).sum()) for t in chip.tiles]
            rec: dict[str, Any] = {
                "epoch": epoch + seen / len(y_tr) - epoch * 1.0 - (epoch * 0),
                "samples": seen,
                "loss": (loss_acc / loss_n).tolist(),
                "hidden_saturated": ((hidden < 0.01) | (hidden > 0.99))
                .to(torch.float32)
                .mean(1)
                .tolist(),
                "logit_clipped": (acts[-1].abs() >= 0.99 * bound)
                .to(torch.float32)
                .mean((1, 2))
                .tolist(),
                "logit_absmax": acts[-1].abs().amax((1, 2)).tolist(),
                "pulses_per_sample": [
                    (p - q) / (seen - last_seen) / cfg.instances
                    for p, q in zip(pulses, last_pulses, strict=True)
                ],
                "tiles": [tile_stats(t, g_ref) for t in chip.tiles],
            }
            last_pulses, last_seen = pulses, seen
            rec["epoch"] = seen / len(y_tr)
            records.append(rec)
            out_t = rec["tiles"][-1]
            print(
                f"ep {rec['epoch']:.2f} loss {[round(v, 3) for v in rec['loss']]} "
                f"out w_absmax {[round(v, 2) for v in out_t['w_absmax']]} "
                f"at_bound {[round(v, 3) for v in out_t['at_bound']]} "
                f"cm {[round(v, 3) for v in out_t.get('cm_mean', [])]} "
                f"hid_sat {[round(v, 2) for v in rec['hidden_saturated']]} "
                f"clip {[round(v, 3) for v in rec['logit_clipped']]} "
                f"pps {[round(v, 1) for v in rec['pulses_per_sample']]}",
                flush=True,
            )
            loss_acc, loss_n = torch.zeros(cfg.instances), 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(args.out, {"config": values, "records": records})


if __name__ == "__main__":
    main()
