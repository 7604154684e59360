"""snnTorch 1.0.0 on latency-coded MNIST 16x16: the spiking peer.

256-246-10: a ``snn.Synaptic`` hidden layer (synaptic current and membrane, both leaky), a
non-spiking leaky readout (``snn.Leaky`` without reset), cross-entropy on the readout
membrane's maximum over time, Adam. Inputs as insitu encodes them for the in-the-loop MNIST
config (Cramer et al., PNAS 2022): 28x28 cropped by 2 pixels to 24x24, area-averaged to 16x16,
one latency spike per pixel at step ``floor(tau ln(x / (x - threshold)))`` if before the last
step. Runs under ``.venv-peers``.

    .venv-peers/bin/python benchmarks/peers/snntorch_mnist.py [--epochs 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from common import DEFAULT_DATA, epochs_timed, load_mnist, report
from torch import nn


def area_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights averaging n_in pixels onto n_out by their overlap."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    scale = n_in / n_out
    for o in range(n_out):
        lo, hi = o * scale, (o + 1) * scale
        for i in range(math.floor(lo), math.ceil(hi)):
            m[o, i] = min(hi, i + 1) - max(lo, i)
    return (m / scale).float()


def encode(x: torch.Tensor, steps: int, tau: float, threshold: float) -> torch.Tensor:
    """Flat 28x28 images (N, 784) -> latency spikes (N, T, 256), bool."""
    img = x.view(-1, 28, 28)[:, 2:26, 2:26]
    a = area_matrix(24, 16)
    img = torch.einsum("oi,nij,pj->nop", a, img, a).clamp(0.0, 1.0).reshape(-1, 256)
    x64 = img.double()
    above = x64 > float(torch.tensor(threshold, dtype=img.dtype))
    safe = torch.where(above, x64, torch.ones_like(x64))
    t = torch.where(above, tau * torch.log(safe / (safe - threshold)), math.inf).floor()
    fires = t < steps
    out = torch.zeros(img.shape[0], steps, 256, dtype=torch.bool)
    idx = torch.where(fires, t, torch.zeros_like(t)).long()
    out.scatter_(1, idx[:, None, :], fires[:, None, :])
    return out


class Net(nn.Module):
    """Synaptic hidden layer, leaky non-spiking readout; returns readout membranes (T, B, 10)."""

    def __init__(self, hidden: int, tau_m: float, tau_s: float) -> None:
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        alpha, beta = math.exp(-1 / tau_s), math.exp(-1 / tau_m)
        grad = surrogate.fast_sigmoid(slope=10)
        self.fc1 = nn.Linear(256, hidden)
        self.lif1 = snn.Synaptic(alpha=alpha, beta=beta, spike_grad=grad)
        self.fc2 = nn.Linear(hidden, 10)
        self.out = snn.Leaky(beta=beta, reset_mechanism="none")

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        syn, mem1 = self.lif1.reset_mem()
        mem2 = self.out.reset_mem()
        drive = self.fc1(spikes)  # (B, T, hidden): all steps' input currents at once
        trace = []
        for t in range(spikes.shape[1]):
            z, syn, mem1 = self.lif1(drive[:, t], syn, mem1)
            _, mem2 = self.out(self.fc2(z), mem2)
            trace.append(mem2)
        return torch.stack(trace)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000, help="training samples per epoch")
    p.add_argument("--warmup", type=int, default=1024, help="first samples, trained untimed")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--hidden", type=int, default=246)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tau-m", type=float, default=3.5, help="membrane time constant (steps)")
    p.add_argument("--tau-s", type=float, default=3.5, help="synaptic time constant (steps)")
    p.add_argument("--enc-tau", type=float, default=8.0)
    p.add_argument("--enc-threshold", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-test", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_mnist(Path(args.data_dir))
    x_train = encode(data["x_train"][: args.samples], args.steps, args.enc_tau, args.enc_threshold)
    y_train = data["y_train"][: args.samples]
    net = Net(args.hidden, args.tau_m, args.tau_s)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()

    def step(idx: torch.Tensor) -> float:
        logits = net(x_train[idx].float()).amax(0)
        loss = loss_fn(logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    n = x_train.shape[0]
    result = epochs_timed(step, n, args.epochs, args.batch, args.warmup, args.seed)
    if not args.no_test:
        x_test = encode(data["x_test"], args.steps, args.enc_tau, args.enc_threshold)
        with torch.no_grad():
            pred = torch.cat(
                [
                    net(x_test[i : i + 1000].float()).amax(0).argmax(-1)
                    for i in range(0, 10000, 1000)
                ]
            )
        result["test_accuracy"] = float(100 * (pred == data["y_test"]).float().mean())
    report(result)


if __name__ == "__main__":
    main()
