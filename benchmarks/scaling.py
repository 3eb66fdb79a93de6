"""Scaling of the training step with sequence length and batch: fused v2 against ``torch.nn.LSTM``.

Target: no worse than linear in length. For each length (at the default batch)
and each batch (at the default length) the table gives both models' median
forward + backward time, the time per frame and sequence (flat means linear), the
growth over the previous row against the growth of the work, and the ratio to
the LSTM beside the op-count ratio (0.5).

Run::

    python benchmarks/scaling.py
    python benchmarks/scaling.py --lengths 250 500 --batches 1 8 --repeats 2
    python benchmarks/scaling.py --batches        # the length sweep only
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


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="*", default=[250, 500, 1000, 2000])
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--batch", type=int, default=16, help="batch of the length sweep")
    parser.add_argument("--frames", type=int, default=500, help="length of the batch sweep")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup(args, f"scaling of a training step, {args.input}->{args.hidden} x {args.layers} layers")

    lstm = torch.nn.LSTM(args.input, args.hidden, args.layers, batch_first=True)
    v2 = spiking(args, "v2", "fused").train()
    ops = dense_macs_per_frame(v2) / dense_macs_per_frame(lstm)
    sweeps = [
        ("frames", [(args.batch, t) for t in args.lengths]),
        ("batch", [(b, args.frames) for b in args.batches]),
    ]
    for label, shapes in sweeps:
        if not shapes:
            continue
        rows, previous = [], None
        for batch, frames in shapes:
            x = torch.randn(batch, frames, args.input)
            t = interleaved_medians({"LSTM": fwd_bwd(lstm, x), "v2": fwd_bwd(v2, x)}, args.repeats)
            work = batch * frames
            growth = "" if previous is None else f"{t['v2'] / previous[0]:.2f} / {work / previous[1]:.2f}"
            rows.append(
                [
                    f"{batch} x {frames}",
                    t["LSTM"],
                    t["v2"],
                    t["LSTM"] / work * 1e6,
                    t["v2"] / work * 1e6,
                    growth,
                    ops,
                    t["v2"] / t["LSTM"],
                    t["v2"] / t["LSTM"] / ops,
                ]
            )
            previous = (t["v2"], work)
        print(f"\nsweep over {label}")
        headers = [
            "batch x frames",
            "LSTM s",
            "v2 s",
            "LSTM us/fr",
            "v2 us/fr",
            "v2 growth / work growth",
            "op ratio",
            "time ratio",
            "short by",
        ]
        print(table(headers, rows))
    print(SHORT_BY)


if __name__ == "__main__":
    main()
