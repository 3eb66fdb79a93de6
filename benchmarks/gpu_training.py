"""GPU training speed: the Triton recurrence of v2, v1 and lif against cuDNN's LSTM and GRU.

Target: v2's training step (forward + backward) at batch 64 x 1000 frames, 40 -> 550 x 2, in at
most 1.0x cuDNN LSTM's time; the limit, at half the multiply-adds, is 0.5. The reference loop
(per-frame torch ops) is timed beside it, with fewer repeats. Every ratio is against the LSTM
measured in the same run, in float32 and under bfloat16 autocast; forward-only and batch-1
inference (the spiking encoders' Triton path, dense) are timed too. The last table gives the
fraction of v2's spikes that bfloat16 autocast changes against float32.

Run, on a machine with a CUDA GPU::

    python benchmarks/gpu_training.py
    python benchmarks/gpu_training.py --repeats 20 --reference-repeats 0

Without a GPU, ``--interpret`` runs it at a toy size on CPU through ``TRITON_INTERPRET=1``
(a check that the script runs, not a timing).
"""

from __future__ import annotations

import os
import sys

if "--interpret" in sys.argv:  # before Triton is imported: it reads this once
    os.environ["TRITON_INTERPRET"] = "1"

import torch  # noqa: E402
from common import base_parser, interleaved_medians, setup, spiking, table  # noqa: E402

TARGET = 1.0


def synchronized(fn, device: str):
    def run() -> None:
        fn()
        if device == "cuda":
            torch.cuda.synchronize()

    return run


def step(model: torch.nn.Module, x: torch.Tensor, train: bool, dtype: torch.dtype | None, device: str):
    """One forward (+ backward when ``train``) of ``model`` on ``x``, under autocast to ``dtype``."""

    def run() -> None:
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            with torch.set_grad_enabled(train):
                out, _ = model(x)
        if train:
            out.float().sum().backward()

    return synchronized(run, device)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--reference-repeats", type=int, default=2, help="0 skips the reference loop")
    parser.add_argument("--interpret", action="store_true", help="no GPU: a toy size on CPU, interpreted")
    args = parser.parse_args()
    device = "cpu" if args.interpret else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu_training.py needs a CUDA GPU; without one, --interpret checks that it runs")
    if args.interpret:
        args.batch, args.frames, args.hidden, args.repeats = 2, 12, 16, 1
        args.reference_repeats = min(args.reference_repeats, 1)
    setup(args, __doc__.splitlines()[0])
    print(torch.cuda.get_device_name() if device == "cuda" else "CPU, Triton interpreted (no timing claim)")
    print(f"batch {args.batch} x {args.frames} frames, {args.input} -> {args.hidden} x {args.layers}")
    x = torch.randn(args.batch, args.frames, args.input, device=device)
    baselines = {
        name: cls(args.input, args.hidden, args.layers, batch_first=True).to(device)
        for name, cls in (("LSTM (cuDNN)", torch.nn.LSTM), ("GRU (cuDNN)", torch.nn.GRU))
    }
    models = {f"{n} Triton": spiking(args, n, "triton").to(device) for n in ("v2", "v1", "lif")}
    reference = {"v2 reference loop": spiking(args, "v2", "reference").to(device)}
    rows = []
    for dtype in (None, torch.bfloat16):
        for train in (True, False):
            everyone = {**baselines, **models}
            fns = {n: step(m.train(train), x, train, dtype, device) for n, m in everyone.items()}
            times = interleaved_medians(fns, args.repeats)
            if args.reference_repeats:
                fn = step(reference["v2 reference loop"].train(train), x, train, dtype, device)
                times.update(interleaved_medians({"v2 reference loop": fn}, args.reference_repeats))
            lstm = times["LSTM (cuDNN)"]
            for name, seconds in times.items():
                what = ("float32" if dtype is None else "bfloat16") + (", fwd+bwd" if train else ", forward")
                rows.append((what, name, f"{1000 * seconds:.2f}", f"{seconds / lstm:.2f}"))
    print(table(("precision, pass", "encoder", "median ms", "x LSTM"), rows))
    v2_step = next(float(r[3]) for r in rows if r[0] == "float32, fwd+bwd" and r[1] == "v2 Triton")
    print(f"v2 training step: {v2_step:.2f}x cuDNN LSTM (target <= {TARGET}, limit 0.5)")

    one = x[:1]
    fns = {name: step(m.eval(), one, False, None, device) for name, m in {**baselines, **models}.items()}
    times = interleaved_medians(fns, args.repeats)
    lstm = times["LSTM (cuDNN)"]
    rows = [(n, f"{1000 * t:.2f}", f"{t / lstm:.2f}") for n, t in times.items()]
    print(table(("batch 1, forward", "median ms", "x LSTM"), rows))

    v2 = models["v2 Triton"].eval()
    with torch.no_grad():
        full = v2(x)[0]
        with torch.autocast(device, dtype=torch.bfloat16):
            half = v2(x)[0]
    flips = (half != full).float().mean().item()
    print(f"bfloat16 autocast changes {flips:.2%} of v2's spikes against float32 (untrained weights)")


if __name__ == "__main__":
    main()
