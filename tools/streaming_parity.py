#!/usr/bin/env python3
"""SpeechBrain's StreamingASR against SpikingASR (greedy) on a folder of audio: same text or not.

Files are split by whether the whole file's log-Mel floor raised any Fbank value (a stream can
only floor below its loudest frame so far: the one expected difference). With a reference
transcription, both WERs are printed too.

Run::

    python tools/streaming_parity.py pretrained/snn-an4 ../shared/data/an4/wav/an4test_clstk \\
        --references ../shared/data/an4/etc/an4_test.transcription
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import jiwer
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from score_transcripts import read_references  # noqa: E402
from speechbrain.inference.ASR import StreamingASR  # noqa: E402
from speechbrain.utils.dynamic_chunk_training import DynChunkTrainConfig  # noqa: E402

from snn_asr.inference import SpikingASR  # noqa: E402
from snn_asr.inference.fbank_stream import floored_values  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("audio", type=Path, help="a folder of audio files (searched recursively)")
    parser.add_argument("--references", type=Path, help="AN4 .transcription or 'id WORDS' file")
    parser.add_argument("--chunk", type=int, default=16, help="DynChunkTrainConfig chunk size (frames)")
    args = parser.parse_args()
    ours = SpikingASR.from_hparams(source=str(args.model_dir))
    streaming = StreamingASR.from_hparams(source=str(args.model_dir), savedir=tempfile.mkdtemp())
    config = DynChunkTrainConfig(args.chunk, 0)
    files = sorted(p for p in args.audio.rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    counts = {True: [0, 0], False: [0, 0]}  # floored: [files, equal]
    whole, streamed = {}, {}
    with torch.no_grad():
        for path in tqdm(files, desc="files", unit="file"):
            whole[path.stem] = ours.transcribe_file(str(path))
            streamed[path.stem] = streaming.transcribe_file(str(path), config, use_torchaudio_streaming=False)
            tally = counts[floored_values(ours.parts.compute_features, ours.load_audio(str(path))) > 0]
            tally[0] += 1
            tally[1] += whole[path.stem] == streamed[path.stem]
    for floored, (n, equal) in counts.items():
        print(f"{'with' if floored else 'without'} floored Fbank values: {n} files, {equal} the same text")
    if args.references:
        refs = read_references(args.references)
        ids = [i for i in whole if i in refs]
        for name, hyps in (("SpikingASR greedy", whole), ("StreamingASR", streamed)):
            wer = 100 * jiwer.wer([refs[i] for i in ids], [hyps[i] for i in ids])
            print(f"{name}: WER {wer:.2f} over {len(ids)} files")


if __name__ == "__main__":
    main()
