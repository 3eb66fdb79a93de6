#!/usr/bin/env python3
"""Real-time factor and peak memory of ``snn-asr transcribe`` on a long file: SNN vs LSTM model.

Both models come from the same recipe (``hparams/snn.yaml`` and ``hparams/lstm.yaml``, exported with
``tools/export_model.py``). A ``--minutes`` long file is synthesised by repeating ``--audio``; each
model transcribes it in its own process (streaming in ``--chunk-seconds`` chunks), and the script
prints wall time, real-time factor and peak RSS (``os.wait4``), and SNN/LSTM ratios::

    python benchmarks/cli_rtf.py --snn pretrained/snn --lstm pretrained/lstm --audio speech.flac
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from snn_asr.dataio import load_audio


def run(model: Path, audio: Path, chunk_seconds: float, *extra: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one ``snn-asr transcribe`` process."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "snn_asr.inference.cli", "transcribe", str(model), str(audio)]
    command += ["--chunk-seconds", str(chunk_seconds), *extra]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"error: {' '.join(command)} failed with status {status}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snn", type=Path, required=True, help="exported SNN model folder")
    parser.add_argument("--lstm", type=Path, required=True, help="exported LSTM model folder")
    parser.add_argument("--audio", type=Path, required=True, help="speech to repeat")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunk-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    piece = load_audio(args.audio).numpy()
    repeats = int(np.ceil(args.minutes * 60 * 16000 / len(piece)))
    with tempfile.TemporaryDirectory() as tmp:
        long_file = Path(tmp) / "long.flac"
        sf.write(long_file, np.tile(piece, repeats)[: int(args.minutes * 60 * 16000)], 16000)
        seconds = args.minutes * 60
        runs = [("snn", args.snn, ()), ("snn event-driven", args.snn, ("--event-driven",))]
        runs.append(("lstm", args.lstm, ()))
        results = {name: run(model, long_file, args.chunk_seconds, *extra) for name, model, extra in runs}
    for name, (wall, rss) in results.items():
        print(
            f"{name}: {seconds:.0f} s audio in {wall:.1f} s "
            f"(RTF {wall / seconds:.4f}), peak RSS {rss:.0f} MiB"
        )
    lstm_wall, lstm_rss = results["lstm"]
    for name in ("snn", "snn event-driven"):
        wall, rss = results[name]
        print(f"{name} / LSTM: time {wall / lstm_wall:.2f}, peak RSS {rss / lstm_rss:.2f}")


if __name__ == "__main__":
    main()
