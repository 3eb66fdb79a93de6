"""Training speed: one forward + backward pass of the spiking encoder against ``torch.nn.LSTM``.

Target: v2's fused step at batch 16 x 500 frames in at most 0.67x the LSTM's time
(v2 has half the LSTM's multiply-adds, so 0.5 is the limit to approach). The
reference loop is timed too, with fewer repeats (it is an order of magnitude slower).

The table puts the op-count ratio (dense multiply-adds per frame, which training
spends three times over: forward, input gradient, weight gradient) beside the
measured ratio; "short by" is measured / op-count, 1.00 meaning the op-count
saving is realised in full.

Run::

    python benchmarks/training_speed.py            # the paper's size, 2 threads
    python benchmarks/training_speed.py --neurons v2 lif v1 --repeats 7
    python benchmarks/training_speed.py --min-length 0.7   # a padded batch

``--min-length`` gives the spiking encoders a padded batch (relative lengths spread evenly
from it to 1, as a length-sorted recipe batch has): their batch norm and scale updates then
skip the padded frames. The LSTM runs the same padded tensor whole, as ``torch.nn.LSTM``
does without packing (packed sequences would leave oneDNN's fused RNN).
"""

from __future__ import annotations

import torch
from common import (
    SHORT_BY,
    base_parser,
    dense_macs_per_frame,
    fwd_bwd,
    interleaved_medians,
    setup,
    spiking,
    table,
)

TARGET = 0.67


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=1, help="0 skips the reference loop")
    parser.add_argument("--neurons", nargs="+", default=["v2"], choices=["v2", "v1", "lif"])
    parser.add_argument("--min-length", type=float, default=1.0, help="shortest relative length (padding)")
    args = parser.parse_args()
    setup(
        args,
        f"training step, batch {args.batch} x {args.frames} frames, {args.input}->{args.hidden}"
        f" x {args.layers} layers"
        + (f", spiking encoders' batch padded (lengths {args.min_length}-1)" if args.min_length < 1 else ""),
    )

    x = torch.randn(args.batch, args.frames, args.input)
    padding = {} if args.min_length >= 1.0 else {"lengths": torch.linspace(args.min_length, 1.0, args.batch)}
    lstm = torch.nn.LSTM(args.input, args.hidden, args.layers, batch_first=True)
    models = {"LSTM": lstm}
    for neuron in args.neurons:
        models[f"{neuron} fused"] = spiking(args, neuron, "fused").train()
    steps = {name: fwd_bwd(m, x, **({} if name == "LSTM" else padding)) for name, m in models.items()}
    timed = interleaved_medians(steps, args.repeats)
    if args.reference_repeats:
        reference = spiking(args, args.neurons[0], "reference").train()
        name = f"{args.neurons[0]} reference"
        models[name] = reference
        both = interleaved_medians(
            {"LSTM": fwd_bwd(lstm, x), name: fwd_bwd(reference, x, **padding)},
            args.reference_repeats,
            warmup=0,
        )
        timed[name] = both[name] * timed["LSTM"] / both["LSTM"]  # the ratio from its own run

    lstm_macs = dense_macs_per_frame(lstm)
    rows = []
    for name, seconds in timed.items():
        measured = seconds / timed["LSTM"]
        ops = dense_macs_per_frame(models[name]) / lstm_macs
        rows.append(
            [name, seconds, seconds / (args.batch * args.frames) * 1e6, ops, measured, measured / ops]
        )
    headers = ["model", "median s", "us/frame/seq", "op ratio", "time ratio", "short by"]
    print(table(headers, rows))
    print(SHORT_BY)
    if args.reference_repeats:
        print(
            f"({args.neurons[0]} reference: {args.reference_repeats} run(s) against the LSTM timed alongside;"
            " its seconds are rescaled to the LSTM median above)"
        )
    if "v2 fused" in timed:
        ratio = timed["v2 fused"] / timed["LSTM"]
        verdict = "met" if ratio <= TARGET else "NOT met"
        print(f"target v2 fused <= {TARGET} x LSTM: {ratio:.3f} -> {verdict}")


if __name__ == "__main__":
    main()
