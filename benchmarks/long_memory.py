"""Long-memory experiment: do the gated neurons fix LIF's vanishing gradient?

Task ("recall the first input"): frame 0 carries one of ``C`` classes as a
one-hot vector; the next ``T - 1`` frames carry only noise on other channels. The
model reads the encoder output at the last frame and must name the class, so the
information has to survive ``T - 1`` steps. Chance is ``1 / C``.

For each encoder (lif, v1, v2 spiking; LSTM and GRU) the script prints the
held-out accuracy after training and the gradient norm of the loss with respect
to the first input frame, at initialisation and after training, next to the
norm at the last frame (their ratio shows how much gradient survives the trip).

Run::

    python benchmarks/long_memory.py --steps 250 --iters 300
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from tqdm import tqdm

from snn_asr import SpikingRNN


def make_batch(batch: int, steps: int, classes: int, noise_dims: int, generator: torch.Generator):
    """Inputs (batch, steps, classes + noise_dims) and labels (batch,)."""
    labels = torch.randint(classes, (batch,), generator=generator)
    x = torch.zeros(batch, steps, classes + noise_dims)
    x[torch.arange(batch), 0, labels] = 1.0
    x[:, 1:, classes:] = torch.randn(batch, steps - 1, noise_dims, generator=generator)
    return x, labels


class Recaller(nn.Module):
    """Encoder + linear read-out of the last frame.

    ``forget_bias`` b sets every model's initial retention per step to sigmoid(b): the
    forget-gate pre-activation bias of v1/v2 (batch-norm shift) and LSTM, the update-gate
    bias of the GRU, and the leak ``tau`` of LIF. 0 is each model's default initialisation
    (LIF then keeps its default ``tau`` in [0.8, 1]).
    """

    def __init__(self, kind: str, input_size: int, hidden: int, classes: int, forget_bias: float = 0.0):
        super().__init__()
        if kind in ("lstm", "gru"):
            cls = nn.LSTM if kind == "lstm" else nn.GRU
            self.encoder = cls(input_size, hidden, batch_first=True)
        else:
            self.encoder = SpikingRNN(hidden, input_size=input_size, neuron=kind)
        self.readout = nn.Linear(hidden, classes)
        if forget_bias:
            self._set_retention(kind, hidden, forget_bias)

    @torch.no_grad()
    def _set_retention(self, kind: str, hidden: int, bias: float) -> None:
        enc = self.encoder
        if kind in ("lstm", "gru"):  # torch gate order: LSTM i, f, g, o; GRU r, z, n
            enc.bias_ih_l0[hidden : 2 * hidden] = bias
            enc.bias_hh_l0[hidden : 2 * hidden] = 0.0
        elif kind == "lif":
            enc.layers[0].tau.fill_(torch.sigmoid(torch.tensor(bias)))
        else:
            enc.layers[0].norm.bias[:hidden] = bias  # forget-gate rows come first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.encoder(x)[0][:, -1])


def grad_norms(model: Recaller, x: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(‖dL/dx[0]‖, ‖dL/dx[T-1]‖) averaged over the batch, in eval mode and float64.

    Float64 (on a copy of the model) so that tiny gradients are measured rather than
    flushed to zero as float32 would (0.5**250 is below float32's range).
    """
    probe = copy.deepcopy(model).double().eval()
    x = x.double().clone().requires_grad_(True)
    nn.functional.cross_entropy(probe(x), labels, reduction="sum").backward()
    norms = x.grad.norm(dim=2).mean(0)
    return float(norms[0]), float(norms[-1])


def run(kind: str, args) -> dict:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    input_size = args.classes + args.noise_dims
    model = Recaller(kind, input_size, args.hidden, args.classes, args.forget_bias)
    probe_x, probe_y = make_batch(args.batch, args.steps, args.classes, args.noise_dims, gen)
    init_first, init_last = grad_norms(model, probe_x, probe_y)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    for _ in tqdm(range(args.iters), desc=kind, leave=False):
        x, y = make_batch(args.batch, args.steps, args.classes, args.noise_dims, gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for _ in range(args.eval_batches):
            x, y = make_batch(args.batch, args.steps, args.classes, args.noise_dims, gen)
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    final_first, final_last = grad_norms(model, probe_x, probe_y)
    return {
        "model": kind,
        "accuracy": correct / total,
        "init_first": init_first,
        "init_ratio": init_first / max(init_last, 1e-30),
        "final_first": final_first,
        "final_ratio": final_first / max(final_last, 1e-30),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="lif,v1,v2,lstm,gru")
    parser.add_argument("--steps", type=int, default=250, help="sequence length (memory span)")
    parser.add_argument("--iters", type=int, default=300, help="training iterations")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--noise-dims", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--forget-bias",
        type=float,
        default=0.0,
        help="initial retention sigmoid(b) per step for every model (0: default init)",
    )
    args = parser.parse_args()
    print(
        f"recall the first of {args.steps} frames; {args.classes} classes (chance "
        f"{1 / args.classes:.2f}); hidden {args.hidden}; {args.iters} iterations of batch {args.batch}; "
        f"forget bias {args.forget_bias}"
    )
    header = (
        "| model | accuracy | ‖∂L/∂x₀‖ init | ‖∂L/∂x₀‖/‖∂L/∂x_T‖ init | ‖∂L/∂x₀‖ trained "
        "| ‖∂L/∂x₀‖/‖∂L/∂x_T‖ trained | train s |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|")
    for kind in args.models.split(","):
        r = run(kind, args)
        print(
            f"| {r['model']} | {r['accuracy']:.3f} | {r['init_first']:.2e} | {r['init_ratio']:.2e} "
            f"| {r['final_first']:.2e} | {r['final_ratio']:.2e} | {r['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
