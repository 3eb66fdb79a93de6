"""Peak training memory: a forward + backward pass at 1000 frames, spiking encoders against ``nn.LSTM``.

Target: the fused v2 encoder's peak no more than the LSTM's. Each model runs in a
fresh subprocess; its peak is the process's peak resident memory (``ru_maxrss``)
over ``--steps`` measured steps, minus its resident memory just before the first of
them, after a small warm-up step that loads kernels and libraries (so those are not
counted). Several steps, because buffers reused from step to step (``snn_asr.primitives.workspace``)
stay resident between steps: the peak of a steady run, not of a first step, is compared.

Run::

    python benchmarks/training_memory.py
    python benchmarks/training_memory.py --frames 2000 --models LSTM "v2 fused"
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import torch
from common import base_parser, fwd_bwd, setup, spiking, table

TARGET = 1.0
MODELS = ["LSTM", "v2 fused", "v1 fused", "lif fused", "v2 reference"]


def resident_mib() -> float:
    """Current resident memory of this process in MiB."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def build(name: str, args) -> torch.nn.Module:
    if name == "LSTM":
        return torch.nn.LSTM(args.input, args.hidden, args.layers, batch_first=True)
    neuron, implementation = name.split()
    return spiking(args, neuron, implementation).train()


def child(args) -> None:
    """Measures one model; prints its numbers as JSON."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    model = build(args.child, args)
    fwd_bwd(model, torch.randn(2, 8, args.input))()  # warm-up: kernels, thread pools
    model.zero_grad(set_to_none=False)
    x = torch.randn(args.batch, args.frames, args.input)
    before = resident_mib()
    for _ in range(args.steps):
        fwd_bwd(model, x)()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak": peak - before, "before": before}))


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3, help="measured training steps")
    parser.add_argument("--models", nargs="+", default=MODELS[:4], choices=MODELS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    setup(
        args,
        f"peak training memory over {args.steps} steps, batch {args.batch} x {args.frames} frames, "
        f"{args.input}->{args.hidden} x {args.layers} layers",
    )
    results = {}
    for name in args.models:
        command = [sys.executable, __file__, "--child", name] + [
            f"--{k}={getattr(args, k)}"
            for k in ("input", "hidden", "layers", "threads", "seed", "batch", "frames", "steps")
        ]
        results[name] = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    activations = 4 * args.batch * args.frames * args.hidden / 2**20  # one float32 (batch, time, hidden)
    rows = [
        [name, r["peak"], r["peak"] / activations, r["peak"] / results["LSTM"]["peak"]]
        for name, r in results.items()
    ]
    print(table(["model", "peak MiB", "in (B,T,H) tensors", "ratio to LSTM"], rows))
    if "v2 fused" in results:
        ratio = results["v2 fused"]["peak"] / results["LSTM"]["peak"]
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"target v2 fused peak <= LSTM's: {ratio:.2f} -> {verdict}")


if __name__ == "__main__":
    main()
