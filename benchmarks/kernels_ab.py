"""Same-run A/B of the compiled CPU kernels against the torch path on the spiking workload.

Runs ``benchmarks/peers/spiking_insitu.py`` (what ``vs_peers.py --task spiking`` times) in
subprocesses with ``INSITU_KERNELS=0`` (torch loops) and ``=1`` (numba kernels), alternating,
for each trainer, and prints the median samples/s of each and the ratio kernel / torch measured
within each repeat. A fraction of an epoch is enough: speed per batch does not change over
training.

    .venv/bin/python benchmarks/kernels_ab.py [--repeats 3] [--samples 6144] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "peers" / "spiking_insitu.py"


def run_once(algorithm: str, kernels: bool, args: argparse.Namespace) -> dict[str, float]:
    """One training run of ``algorithm``; its JSON result."""
    cmd = [sys.executable, str(SCRIPT), "--algorithm", algorithm, "--epochs", "1", "--no-test"]
    cmd += ["--samples", str(args.samples), "--warmup", str(args.warmup)]
    cmd += ["--threads", str(args.threads), "--seed", "0"]
    env = {**os.environ, "INSITU_KERNELS": "1" if kernels else "0"}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algorithms", nargs="+", default=["snn-software", "in-the-loop"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=6144, help="training samples per run")
    p.add_argument("--warmup", type=int, default=1024, help="first samples, untimed")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    rows: dict[str, dict[str, list[float]]] = {
        a: {"torch": [], "kernels": [], "ratio": []} for a in args.algorithms
    }
    for r in range(args.repeats):
        for a in args.algorithms:
            order = (False, True) if r % 2 == 0 else (True, False)  # alternate who goes first
            speed = {k: run_once(a, k, args)["samples_per_s"] for k in order}
            rows[a]["torch"].append(speed[False])
            rows[a]["kernels"].append(speed[True])
            rows[a]["ratio"].append(speed[True] / speed[False])
            print(f"repeat {r}: {a} torch {speed[False]:.0f}/s kernels {speed[True]:.0f}/s")
    print(json.dumps(rows))
    print("| trainer | torch path samples/s | kernels samples/s | ratio (per repeat) |")
    print("|---|---|---|---|")
    for a, v in rows.items():
        per = ", ".join(f"{x:.2f}" for x in v["ratio"])
        print(
            f"| {a} | {statistics.median(v['torch']):,.0f} | "
            f"{statistics.median(v['kernels']):,.0f} | "
            f"**{statistics.median(v['ratio']):.2f}** ({per}) |"
        )


if __name__ == "__main__":
    main()
