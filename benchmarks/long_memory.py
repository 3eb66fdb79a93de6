"""Long-memory experiment: do the gated neurons fix LIF's vanishing gradient?

Task ("recall the first input"): frame 0 carries one of ``C`` classes as a
one-hot vector; the next ``T - 1`` frames carry only noise on other channels. The
model reads the encoder output at the last frame and must name the class, so the
information has to survive ``T - 1`` steps. Chance is ``1 / C``.

For each encoder (lif, v1, v2 spiking; LSTM and GRU; ``v2_u1`` is v2 with ``U`` at
gain 1 instead of the library's :data:`~snn_asr.neurons.recurrent.RECURRENT_GAIN`) the
script prints the held-out accuracy after training and the gradient norm of the loss
with respect to the first input frame, at initialisation and after training, next to
the norm at the last frame (their ratio shows how much gradient survives the trip).

Every model is tuned the same way: each learning rate of ``--lrs`` is tried on the
tuning seed, the one with the best held-out accuracy there (ties: the smaller rate)
is kept, and the model is then trained afresh on each of ``--seeds`` (other weights,
other data). The table gives the mean, standard deviation and range over those seeds,
and the gradient norms' medians.

Run::

    python benchmarks/long_memory.py --steps 250 --iters 600 --forget-bias 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
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
            self.encoder = SpikingRNN(hidden, input_size=input_size, neuron=kind.removesuffix("_u1"))
        self.readout = nn.Linear(hidden, classes)
        if kind == "v2_u1":
            with torch.no_grad():
                for block in self.encoder.layers[0].u.weight.split(hidden, dim=0):
                    nn.init.orthogonal_(block, gain=1.0)
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


def run(kind: str, args, lr: float, seed: int, norms: bool = True) -> dict:
    """Trains one model from ``seed`` at rate ``lr``: its held-out accuracy (and gradient norms)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    input_size = args.classes + args.noise_dims
    model = Recaller(kind, input_size, args.hidden, args.classes, args.forget_bias)
    probe_x, probe_y = make_batch(args.batch, args.steps, args.classes, args.noise_dims, gen)
    init_first, init_last = grad_norms(model, probe_x, probe_y) if norms else (0.0, 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    for _ in tqdm(range(args.iters), desc=f"{kind} lr {lr:g} seed {seed}", leave=False):
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
    final_first, final_last = grad_norms(model, probe_x, probe_y) if norms else (0.0, 1.0)
    return {
        "model": kind,
        "accuracy": correct / total,
        "init_first": init_first,
        "init_ratio": init_first / max(init_last, 1e-30),
        "final_first": final_first,
        "final_ratio": final_first / max(final_last, 1e-30),
        "seconds": seconds,
    }


def tuned(kind: str, args) -> tuple[float, dict[float, float]]:
    """The learning rate of ``--lrs`` with the best held-out accuracy on the tuning seed, and each one's."""
    accuracy = {lr: run(kind, args, lr, args.tune_seed, norms=False)["accuracy"] for lr in args.lrs}
    return max(args.lrs, key=lambda lr: (accuracy[lr], -lr)), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="lif,v1,v2,v2_u1,lstm,gru")
    parser.add_argument("--steps", type=int, default=250, help="sequence length (memory span)")
    parser.add_argument("--iters", type=int, default=600, help="training iterations")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--noise-dims", type=int, default=4)
    parser.add_argument("--lrs", default="1e-3,3e-3,1e-2", help="learning rates tried on the tuning seed")
    parser.add_argument("--tune-seed", type=int, default=0)
    parser.add_argument("--seeds", default="1,2,3", help="seeds the tuned models are reported on")
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument(
        "--forget-bias",
        type=float,
        default=0.0,
        help="initial retention sigmoid(b) per step for every model (0: default init)",
    )
    args = parser.parse_args()
    args.lrs = [float(v) for v in args.lrs.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    print(
        f"recall the first of {args.steps} frames; {args.classes} classes (chance "
        f"{1 / args.classes:.2f}); hidden {args.hidden}; {args.iters} iterations of batch {args.batch}; "
        f"forget bias {args.forget_bias}; learning rate tuned over {args.lrs} on seed {args.tune_seed}, "
        f"reported on seeds {seeds}"
    )
    print(
        "| model | lr (tuning accuracies) | accuracy mean ± sd | min – max | ‖∂L/∂x₀‖ init "
        "| ‖∂L/∂x₀‖/‖∂L/∂x_T‖ init | ‖∂L/∂x₀‖ trained | ‖∂L/∂x₀‖/‖∂L/∂x_T‖ trained | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in args.models.split(","):
        lr, tuning = tuned(kind, args)
        runs = [run(kind, args, lr, seed) for seed in seeds]
        acc = [r["accuracy"] for r in runs]
        spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0] if key not in ("model",)}
        tried = ", ".join(f"{t:.2f}" for t in tuning.values())
        print(
            f"| {kind} | {lr:g} ({tried}) | {statistics.mean(acc):.3f} ± {spread:.3f} | "
            f"{min(acc):.3f} – {max(acc):.3f} | {median['init_first']:.2e} | {median['init_ratio']:.2e} "
            f"| {median['final_first']:.2e} | {median['final_ratio']:.2e} | {median['seconds']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
