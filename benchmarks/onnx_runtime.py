"""onnxruntime against torch: a bundled model's encoder and CTC head at batch 1, one thread.

Both run the same model on the same Fbank features of real speech (the AN4 test files in
``../shared`` where present, else the three in ``tests/data/an4-samples``): torch's fused CPU
recurrence, the ONNX export in onnxruntime in float32 and with int8 weights
(``tools/export_onnx.py --int8``). Two ways: the whole file in one call, and streaming in
chunks of ``--chunk-ms`` with the state carried (torch: the dense encoder and the event-driven
one). Times are medians over interleaved rounds; ratios are against torch whole-file, measured
in the same run. Features are computed once, outside the timing. It also counts the frames where
a spike of the last layer differs between torch and onnxruntime (float rounding: see
docs/inference.md), and where the CTC argmax does.

Run::

    python benchmarks/onnx_runtime.py
    python benchmarks/onnx_runtime.py --model pretrained/snn-digits --chunk-ms 160
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from common import base_parser, interleaved_medians, setup, table

ROOT = Path(__file__).resolve().parents[1]
AN4_TEST = ROOT.parent / "shared" / "data" / "an4" / "wav" / "an4test_clstk"
SAMPLES = ROOT / "tests" / "data" / "an4-samples"


def main() -> None:
    parser = base_parser(__doc__.split("\n\n")[0], threads=1)
    parser.add_argument("--model", type=Path, default=ROOT / "pretrained" / "snn-an4")
    parser.add_argument("--files", type=int, default=20, help="most audio files to time")
    parser.add_argument("--chunk-ms", type=int, default=100, help="streaming chunk")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    setup(args, "onnxruntime vs torch: encoder + CTC head, batch 1")
    sys.path.insert(0, str(ROOT))
    from snn_asr.inference import SpikingASR
    from snn_asr.inference.onnx_export import export_onnx, quantize_int8
    from snn_asr.inference.onnx_runtime import OnnxEncoder

    work = Path(tempfile.mkdtemp(prefix="snn-asr-onnx-bench-"))
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx(args.model, work / "fp32")
        quantize_int8(work / "fp32", work / "int8")
    asr = SpikingASR.from_hparams(source=str(args.model))
    folder = AN4_TEST if AN4_TEST.is_dir() else SAMPLES
    files = sorted(folder.rglob("*.wav"))[: args.files]
    feats = [asr.parts.normalize(asr.parts.compute_features(asr.load_audio(str(f))[None])) for f in files]
    raw = [asr.parts.compute_features(asr.load_audio(str(f))[None]) for f in files]  # ONNX normalises itself
    frames = sum(f.shape[1] for f in feats)
    chunk = max(1, args.chunk_ms // 10)
    runtimes = {
        name: OnnxEncoder(work / name / "model.onnx", threads=args.threads) for name in ("fp32", "int8")
    }
    enc, head = asr.parts.enc, lambda h: asr.parts.log_softmax(asr.parts.ctc_lin(h))
    stream = SpikingASR.from_hparams(source=str(args.model))
    stream.event_driven = True

    @torch.no_grad()
    def torch_whole():
        for x in feats:
            head(enc(x)[0])

    @torch.no_grad()
    def torch_stream(runner_of=asr):
        for x in feats:
            runner = runner_of.encoder_runner()
            for start in range(0, x.shape[1], chunk):
                head(runner(x[:, start : start + chunk]))

    def onnx_whole(name):
        return lambda: [runtimes[name].run(x, outputs=["log_probs"]) for x in raw]

    def onnx_stream(name):
        def run():
            for x in raw:
                state = None
                for start in range(0, x.shape[1], chunk):
                    _, state, _ = runtimes[name].run(
                        x[:, start : start + chunk], state, ["log_probs", "state_out"]
                    )

        return run

    cases = {
        "torch, whole file": torch_whole,
        "onnxruntime fp32, whole file": onnx_whole("fp32"),
        "onnxruntime int8, whole file": onnx_whole("int8"),
        f"torch dense, {args.chunk_ms} ms chunks": torch_stream,
        f"torch event-driven, {args.chunk_ms} ms chunks": lambda: torch_stream(stream),
        f"onnxruntime fp32, {args.chunk_ms} ms chunks": onnx_stream("fp32"),
        f"onnxruntime int8, {args.chunk_ms} ms chunks": onnx_stream("int8"),
    }
    differing = flipped_files = argmax = 0
    with torch.no_grad():  # parity at the level of spikes: the last layer's, every frame
        for x, r in zip(feats, raw):
            spikes = enc(x)[0]
            log_probs, _, onnx_spikes = runtimes["fp32"].run(r)
            flips = (spikes != onnx_spikes).any(-1)
            differing, flipped_files = differing + int(flips.sum()), flipped_files + bool(flips.any())
            argmax += int((head(spikes).argmax(-1) != log_probs.argmax(-1)).sum())
    times = interleaved_medians(cases, args.repeats)
    base = times["torch, whole file"]
    rows = [
        [name, f"{1e6 * t / frames:.1f}", f"{t / (frames / 100):.4f}", f"{base / t:.2f}x"]
        for name, t in times.items()
    ]
    print(f"{len(files)} files from {folder}, {frames} frames ({frames / 100:.0f} s of audio)")
    print(table(["path", "us/frame", "RTF", "speed vs torch whole file"], rows))
    print(
        f"onnxruntime fp32 vs torch: {differing} of {frames} frames with a last-layer spike differing, in "
        f"{flipped_files} of {len(files)} files; CTC argmax differs on {argmax} frames"
    )


if __name__ == "__main__":
    main()
