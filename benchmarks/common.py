"""Shared helpers for the speed and memory benchmarks: timing, models, tables.

Every benchmark measures its baselines in the same run and reports ratios, so a
busy machine slows both sides alike; timings of different models are interleaved
repeat by repeat for the same reason.
"""

from __future__ import annotations

import argparse
import atexit
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from snn_asr import SpikingRNN
from snn_asr.ops import count_parameters


def base_parser(description: str, threads: int = 2) -> argparse.ArgumentParser:
    """Arguments every benchmark takes: the paper's layer sizes and the thread count."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--input", type=int, default=40, help="input features")
    parser.add_argument("--hidden", type=int, default=550, help="neurons per layer")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=threads, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def setup(args: argparse.Namespace, title: str) -> None:
    """Seeds, sets the thread count and prints what the numbers below were measured on."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    print(f"# {title}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"load average at start {_load()}"
    )
    start = time.perf_counter(), _busy_seconds(), _own_seconds()

    def others() -> None:
        capacity = (time.perf_counter() - start[0]) * os.cpu_count()
        other = max(0.0, (_busy_seconds() - start[1]) - (_own_seconds() - start[2]))
        print(f"other processes used {other:.1f} of the {capacity:.1f} CPU-seconds of this run "
              f"({other / capacity:.0%}); well above 0, the timings above are unsure")  # fmt: skip

    atexit.register(others)


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _busy_seconds() -> float:
    """CPU time spent by everything on the machine (Linux ``/proc/stat``), in seconds."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU time of this process and its finished children, in seconds."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved_medians(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall-clock seconds of each function; one call of each per round, ``warmup`` rounds untimed.

    Example
    -------
    >>> sorted(interleaved_medians({"a": lambda: None}, repeats=3))
    ['a']
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def spiking(args: argparse.Namespace, neuron: str = "v2", implementation: str = "auto", **kw) -> SpikingRNN:
    """The paper's encoder at the benchmark's sizes."""
    return SpikingRNN(
        args.hidden,
        input_size=args.input,
        num_layers=args.layers,
        neuron=neuron,
        implementation=implementation,
        **kw,
    )


def dense_macs_per_frame(module: torch.nn.Module) -> int:
    """Multiply-adds per frame and sequence of a dense forward pass: one per matrix weight."""
    return count_parameters(module)


def fwd_bwd(model: torch.nn.Module, x: torch.Tensor, **kwargs: object) -> Callable[[], None]:
    """A training step's compute (no optimizer): forward (``model(x, **kwargs)``), a scalar loss, backward."""

    def step() -> None:
        out, _ = model(x, **kwargs)
        out.sum().backward()

    return step


SHORT_BY = (
    "short by = time ratio / op ratio: above 1, the measured saving falls short of the op-count saving "
    "by that factor; below 1, it exceeds it"
)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns right-aligned after the first.

    Example
    -------
    >>> print(table(["a", "b"], [["x", 1.5]]))
    a     b
    x  1.50
    """
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [_row(headers, widths)] + [_row(r, widths) for r in cells]
    return "\n".join(lines)


def _fmt(cell: object) -> str:
    if isinstance(cell, float):
        return f"{cell:.3g}" if abs(cell) < 0.01 and cell != 0 else f"{cell:.2f}"
    return str(cell)


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    first = f"{cells[0]:<{widths[0]}}"
    return "  ".join([first] + [f"{c:>{w}}" for c, w in zip(cells[1:], widths[1:])]).rstrip()
