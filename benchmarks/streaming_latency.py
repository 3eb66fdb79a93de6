"""Streaming inference at batch 1: per-frame latency of the event-driven encoder against ``torch.nn.GRU``.

Target: the event-driven v2 encoder (``snn_asr.fastpaths.event_driven``), fed one frame at a
time with its state carried, at least 3x faster per frame than a same-size GRU
stepped frame by frame. Also reported: the GRU over the whole sequence in one call,
the event-driven encoder given the whole sequence, and the dense spiking paths
(fused and reference) stepped frame by frame.

The encoder is calibrated first (training-mode passes over random input set the
batch norm statistics and running scales; no learning), then put in eval mode.
Work follows the spike count, so the table sweeps the firing threshold; for each
setting it shows the measured spike rate, the op-count ratio to the GRU
(``snn_asr.ops.count_ops``: event-driven multiplications / the GRU's) beside the
measured latency ratio, and "short by" = measured / op-count. It also checks the
event-driven outputs against the dense reference on the benchmark sequence.

With ``--model`` (an exported folder, e.g. ``pretrained/snn-an4``) and ``--audio`` it times that
trained encoder instead, on the real features of the given files (the folder's own front end),
against a same-size GRU and LSTM stepped alike: the wall-clock side of a sparsity setting.

Run::

    python benchmarks/streaming_latency.py
    python benchmarks/streaming_latency.py --thresholds 3 --frames 1000
    python benchmarks/streaming_latency.py --model pretrained/snn-an4 --audio tests/data/an4-samples/*.wav
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable

import torch
from common import SHORT_BY, base_parser, interleaved_medians, setup, spiking, table

from snn_asr import SpikingRNN
from snn_asr.fastpaths.event_driven import EventDrivenRNN
from snn_asr.ops import count_ops

TARGET = 3.0


def per_frame(steps: dict[str, Callable[[int], object]], frames: int, repeats: int) -> dict[str, float]:
    """Median seconds of each ``step(n)`` over every frame ``n`` of ``repeats`` passes (one more untimed).

    The steppers take turns pass by pass: a busy moment of the machine hits all alike,
    while each pass runs with its own weights in cache, as a stream would.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats + 1):
        for name, step in steps.items():
            for n in range(frames):
                start = time.perf_counter()
                step(n)
                if round_:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def frame_stepper(model: torch.nn.Module, frames: list, states: dict, name: str) -> Callable[[int], None]:
    """``step(n)``: ``model`` on frame ``n`` alone, carrying its state in ``states[name]`` (reset at 0)."""

    def step(n: int) -> None:
        _, states[name] = model(frames[n], None if n == 0 else states[name])

    return step


def calibrated(args, threshold: int) -> SpikingRNN:
    rnn = spiking(args, "v2", threshold=threshold).train()
    with torch.no_grad():
        for _ in range(args.calibration):
            rnn(torch.randn(8, 200, args.input))
    return rnn.eval()


@torch.no_grad()
def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--thresholds", type=int, nargs="+", default=[3, 0, 7, 15])
    parser.add_argument("--calibration", type=int, default=5, help="training-mode passes before eval")
    parser.add_argument("--model", help="a trained model folder: time its encoder on --audio instead")
    parser.add_argument("--audio", nargs="+", default=[], help="speech files for --model")
    args = parser.parse_args()
    if args.model:
        return trained_model(args)
    sizes = f"{args.input}->{args.hidden} x {args.layers} layers"
    setup(args, f"streaming, batch 1, {args.frames} frames, {sizes}")

    x = torch.randn(1, args.frames, args.input)
    frames = [x[:, n : n + 1] for n in range(args.frames)]
    gru = torch.nn.GRU(args.input, args.hidden, args.layers, batch_first=True).eval()
    states: dict[str, torch.Tensor] = {}

    rows = []
    for threshold in args.thresholds:
        rnn = calibrated(args, threshold)
        ops = count_ops(rnn, x)
        rate = statistics.mean(ops.spike_rates().values())
        stream = EventDrivenRNN(rnn)
        inputs = [f[0] for f in frames]

        def event_step(n: int, stream: EventDrivenRNN = stream, inputs: list = inputs) -> None:
            if n == 0:
                stream.reset()
            stream(inputs[n])

        steps = {"GRU": frame_stepper(gru, frames, states, "GRU"), "event": event_step}
        if threshold == args.thresholds[0]:
            check(rnn, stream, x)
            for implementation in ("fused", "reference"):
                dense = copy.deepcopy(rnn)
                dense.implementation = implementation
                steps[f"dense {implementation}"] = frame_stepper(dense, frames, states, implementation)
        frame = per_frame(steps, args.frames, args.repeats)
        whole = interleaved_medians(
            {"GRU": lambda: gru(x), "event": lambda stream=stream: (stream.reset(), stream(x[0]))},
            args.repeats,
        )
        print(
            f"threshold {threshold}: GRU frame by frame {frame['GRU'] * 1e6:.1f} us/frame, "
            f"whole sequence {whole['GRU'] / args.frames * 1e6:.1f} us/frame"
        )
        ratio = frame["event"] / frame["GRU"]
        rows.append(
            [
                f"event-driven, threshold {threshold}",
                rate,
                frame["event"] * 1e6,
                ops.ratio_to_gru,
                ratio,
                1 / ratio,
                ratio / ops.ratio_to_gru,
            ]
        )
        ratio = whole["event"] / whole["GRU"]
        rows.append(
            [
                "  same, whole sequence",
                rate,
                whole["event"] / args.frames * 1e6,
                ops.ratio_to_gru,
                ratio,
                1 / ratio,
                ratio / ops.ratio_to_gru,
            ]
        )
        for name in steps:
            if name.startswith("dense"):
                ratio = frame[name] / frame["GRU"]
                rows.append(
                    [
                        f"  {name}, frame by frame",
                        rate,
                        frame[name] * 1e6,
                        2 / 3,
                        ratio,
                        1 / ratio,
                        ratio / (2 / 3),
                    ]
                )
    headers = [
        "encoder (vs GRU frame by frame; whole vs whole)",
        "spike rate",
        "us/frame",
        "op ratio",
        "time ratio",
        "speedup",
        "short by",
    ]
    print(table(headers, rows))
    print(SHORT_BY)
    print("op ratio of the dense paths: v2's 2 gates against the GRU's 3 (all weights every frame)")
    first = rows[0]
    verdict = "met" if first[5] >= TARGET else "NOT met"
    print(
        f"target event-driven frame by frame >= {TARGET}x faster than GRU frame by frame: "
        f"{first[5]:.2f}x at threshold {args.thresholds[0]} -> {verdict}"
    )


def trained_model(args) -> None:
    """The ``--model`` mode: the trained encoder, event-driven, on real features; GRU and LSTM alike."""
    from snn_asr.dataio import load_audio
    from snn_asr.inference.asr import SpikingASR

    if not args.audio:
        raise SystemExit("error: --model needs --audio FILE ... (speech to take the features from)")
    asr = SpikingASR.from_hparams(args.model, local_only=True)
    rnn = asr.parts.enc
    feats = [next(asr.features(load_audio(path, asr.sample_rate))) for path in args.audio]
    x = torch.cat(feats, dim=1)[:, : args.frames]
    hidden, layers, width = rnn.hidden_size, rnn.num_layers, x.shape[-1]
    setup(args, f"streaming, batch 1, {x.shape[1]} frames of {len(args.audio)} files, {args.model}")
    stream = EventDrivenRNN(rnn)
    dense, _ = rnn(x)
    flips = int((stream(x[0]) != dense[0]).sum())
    print(f"event-driven against the dense encoder on these frames: {flips} of {dense.numel()} spikes differ")
    ops = count_ops(rnn, x)
    baselines = {
        "GRU": torch.nn.GRU(width, hidden, layers, batch_first=True).eval(),
        "LSTM": torch.nn.LSTM(width, hidden, layers, batch_first=True).eval(),
    }
    frames = [x[:, n : n + 1] for n in range(x.shape[1])]
    states: dict = {}

    def event_step(n: int) -> None:
        if n == 0:
            stream.reset()
        stream(frames[n][0, 0][None])

    steps = {name: frame_stepper(model, frames, states, name) for name, model in baselines.items()}
    steps["event"] = event_step
    frame = per_frame(steps, len(frames), args.repeats)
    wholes = {name: (lambda model=model: model(x)) for name, model in baselines.items()}
    whole = interleaved_medians(wholes | {"event": lambda: (stream.reset(), stream(x[0]))}, args.repeats)
    rows = []
    for name in baselines:
        for how, times, count in (("frame by frame", frame, 1), ("whole sequence", whole, len(frames))):
            ratio = times["event"] / times[name]
            rows.append([f"event-driven vs {name}, {how}", times["event"] / count * 1e6,
                         times[name] / count * 1e6, ratio, 1 / ratio])  # fmt: skip
    rates = " / ".join(f"{r:.3f}" for r in ops.spike_rates().values())
    print(f"spike rates {rates}; event-driven multiplications / a same-size GRU's: {ops.ratio_to_gru:.3f}")
    print(f"energy estimate per second of speech: {ops.energy_uj / x.shape[1] * 100:.1f} uJ "
          f"(GRU {ops.gru_energy_uj / x.shape[1] * 100:.1f} uJ; snn_asr.ops)")  # fmt: skip
    print(table(["comparison", "event us/frame", "baseline us/frame", "time ratio", "speedup"], rows))


def check(rnn: SpikingRNN, stream: EventDrivenRNN, x: torch.Tensor) -> None:
    """Event-driven against the dense reference (float32) on the benchmark sequence.

    Teacher-forced: each frame of each layer from the reference's own previous state
    and input, which isolates one frame's rounding. Free-running: whole sequences,
    next to the reference run in float64, which shows how far float32 rounding alone
    carries this (untrained, chaotic) network once one spike flips.
    """
    rnn.implementation = "reference"
    h, worst, flips, total = x, 0.0, 0, 0
    for neuron, layer in zip(rnn.stacks[0], stream.layers):
        out, state = [], neuron.initial_state(1, x)
        for n in range(x.shape[1]):
            layer.current, layer.voltage, layer.spikes = (s[0].numpy().copy() for s in state)
            got = layer(h[0, n : n + 1].numpy())
            y, state = neuron(h[:, n : n + 1], state)
            worst = max(worst, float((torch.from_numpy(layer.voltage) - state.voltage[0]).abs().max()))
            flips += int((torch.from_numpy(got[0]) != y[0, 0]).sum())
            total += y.numel()
            out.append(y)
        h = torch.cat(out, 1)
    scale = min(float(n.quantizer.scale) for n in rnn.stacks[0])
    print(
        f"teacher-forced, every frame and layer: {flips} of {total} spikes differ, "
        f"max |V difference| {worst:.2e} (running scales >= {scale:.2f}; spike quantum scale/32)"
    )
    dense, _ = rnn(x)
    exact, _ = copy.deepcopy(rnn).double()(x.double())
    stream.reset()
    free = stream(x[0])
    for name, y in (("event-driven", free), ("reference in float64", exact[0].float())):
        same = (y == dense[0]).float().mean().item()
        print(f"free-running {x.shape[1]} frames, {name} vs reference: {same:.4f} of spikes identical")


if __name__ == "__main__":
    main()
