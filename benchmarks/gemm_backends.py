"""GEMMs: torch's float32 ``mm`` (MKL) against oneDNN (:mod:`snn_asr.primitives.linear`), spiking shapes.

Why the spiking layers route their products through oneDNN, and why weight gradients
stay on MKL. Shapes are a v2 layer at the paper's size, 550 -> 2 x 550, trained at
batch 16 x 500 frames: the per-frame recurrent product and its backward (16 rows),
and the whole-sequence input projection with its two gradients (8000 rows).
"oneDNN / MKL" below 1 means oneDNN is faster.

Run::

    python benchmarks/gemm_backends.py
    python benchmarks/gemm_backends.py --threads 1
"""

from __future__ import annotations

import torch
from common import base_parser, interleaved_medians, setup, table

from snn_asr.primitives.linear import matmul_nt, pack, uses_onednn


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    setup(
        args,
        f"float32 GEMMs of a v2 layer, {args.hidden} -> 2 x {args.hidden}, "
        f"batch {args.batch} x {args.frames}",
    )
    if not uses_onednn(torch.zeros(args.batch, args.hidden), torch.zeros(2 * args.hidden, args.hidden)):
        raise SystemExit("error: no oneDNN linear in this torch build; so torch.mm is used")

    hidden, rows, seq_rows = args.hidden, args.batch, args.batch * args.frames
    u = torch.randn(2 * hidden, hidden)  # U, and W of a second layer: (2H, H)
    ut = u.t().contiguous()
    packed, packed_t = pack(u, rows, uses=args.frames), pack(ut, rows, uses=args.frames)
    y, g = torch.randn(rows, hidden), torch.randn(rows, 2 * hidden)
    x, gx = torch.randn(seq_rows, hidden), torch.randn(seq_rows, 2 * hidden)
    cases = {  # name: (multiply-adds, MKL, oneDNN as snn_asr runs it)
        "per frame: U Y": (rows, lambda: torch.mm(y, u.t()), lambda: matmul_nt(y, packed)),
        "per frame: U Y, U not packed": (rows, lambda: torch.mm(y, u.t()), lambda: matmul_nt(y, u)),
        "per frame: dY = dG U": (rows, lambda: torch.mm(g, u), lambda: matmul_nt(g, packed_t)),
        "sequence: W X": (seq_rows, lambda: torch.mm(x, u.t()), lambda: matmul_nt(x, u)),
        "sequence: dX = dG W": (seq_rows, lambda: torch.mm(gx, u), lambda: matmul_nt(gx, u.t().contiguous())),
        "sequence: dW = dG^T X": (
            seq_rows,
            lambda: torch.mm(gx.t(), x),
            lambda: matmul_nt(gx.t().contiguous(), x.t().contiguous()),
        ),
    }
    rows_out = []
    for name, (m, mkl, onednn) in cases.items():
        repeats = args.repeats * (50 if m == rows else 1)
        timed = interleaved_medians({"mkl": mkl, "onednn": onednn}, repeats, warmup=3)
        macs = m * hidden * 2 * hidden
        rows_out.append(
            [name, timed["mkl"] * 1e6, timed["onednn"] * 1e6, macs / timed["mkl"] / 1e9,
             macs / timed["onednn"] / 1e9, timed["onednn"] / timed["mkl"]]
        )  # fmt: skip
    headers = ["product", "MKL us", "oneDNN us", "MKL GMAC/s", "oneDNN GMAC/s", "oneDNN / MKL"]
    print(table(headers, rows_out))
    print("snn_asr uses oneDNN (U packed once per sequence) for all but dW = dG^T X, which stays on torch.mm")


if __name__ == "__main__":
    main()
