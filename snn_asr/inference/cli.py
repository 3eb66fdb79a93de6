"""The ``snn-asr`` command: transcribe audio files with an exported model (see docs/inference.md).

::

    snn-asr transcribe MODEL_DIR a.wav b.flac more/ --list files.txt --format json
    snn-asr transcribe MODEL_DIR long.ogg --beam 8 --lm MODEL_DIR/lm.arpa --report

Inputs are audio files (any format ``soundfile`` reads: WAV, FLAC, OGG, ...; any sample rate and
channel count, resampled and downmixed), folders (searched recursively for audio) and ``--list``
files (one path a line). Results go to stdout (or ``--output``), one per input:

- ``text``: ``<path>\\t<transcript>``;
- ``json``: JSON Lines, ``{"file", "text", "duration", "words": [{"text", "start", "end"}],
  "tokens": [...]}`` (times in seconds; ``tokens`` empty with beam search);
- ``ctm``: NIST CTM, ``<file stem> 1 <start> <duration> <word>`` per word.

Times count CTC frames of the encoder's output, each the Fbank hop times the encoder's time
subsampling (a CNN front end's stride, a CRDNN's pooling). A word's time is where CTC's peaks
for it lie, not the sound: it starts at its first token's peak and ends with its last token's
peak run (greedy) or one frame after that token's first frame (beam search). CTC peaks are a
few frames long, so a word's duration is tens of milliseconds, not how long it was spoken.

A bad input prints one ``error:`` line on stderr and the others are still transcribed; the exit
status is then 1 (2 for a bad model folder or options). Audio that gives an empty transcript
(e.g. silence) is not an error: its line has empty text and stderr gets a ``warning:`` line.
Files longer than ``--chunk-seconds`` are decoded in chunks through the encoder's state.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from snn_asr.dataio import DataError, read_text_lines

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".sph", ".mp3", ".opus", ".aiff", ".aif"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn-asr", description="Speech recognition with snn-asr models.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("transcribe", help="transcribe audio files", description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="exported model folder (tools/export_model.py)")
    p.add_argument("inputs", nargs="*", help="audio files or folders")
    p.add_argument(
        "--list", action="append", default=[], metavar="FILE", help="file of input paths, one a line"
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "ctm"),
        default="text",
        help="json/ctm add word times: where CTC's peaks lie (a word's duration is its peaks' tens of ms, "
        "not its spoken length; see docs/inference.md)",
    )
    p.add_argument("--output", type=Path, help="write results here instead of stdout")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    p.add_argument(
        "--beam",
        type=int,
        metavar="N",
        help="CTC prefix beam search, 0: greedy (default: the model folder's beam_size; greedy if none)",
    )
    p.add_argument(
        "--lm", metavar="ARPA", help="kenlm n-gram for beam search (default: MODEL_DIR/lm.arpa with a beam)"
    )
    p.add_argument("--no-lm", action="store_true", help="beam search without the model folder's n-gram")
    p.add_argument("--lm-weight", type=float, help="LM weight alpha (default: the recipe's lm_weight)")
    p.add_argument("--lm-bonus", type=float, help="word bonus beta (default: the recipe's lm_bonus)")
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="decode longer files in chunks of this length (0: whole)",
    )
    p.add_argument(
        "--event-driven",
        action="store_true",
        help="run a spiking encoder event-driven (faster on CPU; spikes may differ by float rounding)",
    )
    p.add_argument(
        "--report", action="store_true", help="per file on stderr: real-time factor, spike rate, mults"
    )
    return parser


def expand_inputs(inputs: list[str], lists: list[str]) -> list[str]:
    """Input paths: files as given, folders expanded to their audio files (sorted), list files read.

    Example
    -------
    >>> expand_inputs(["a.wav", "missing/"], [])
    ['a.wav', 'missing/']
    """
    paths = list(inputs)
    for list_file in lists:
        paths += [line.strip() for line in read_text_lines(list_file) if line.strip()]
    expanded = []
    for path in paths:
        folder = Path(path)
        if folder.is_dir():
            expanded += sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            expanded.append(path)
    return expanded


def write_result(out: TextIO, fmt: str, path: str, transcript) -> None:
    """One input's result in ``fmt`` (see the module docstring)."""
    if fmt == "text":
        out.write(f"{path}\t{transcript.text}\n")
    elif fmt == "json":
        out.write(json.dumps({"file": path, **transcript.to_dict()}, ensure_ascii=False) + "\n")
    else:
        stem = Path(path).stem
        for word in transcript.words:
            out.write(f"{stem} 1 {word.start:.3f} {word.end - word.start:.3f} {word.text}\n")
    out.flush()


def report_line(path: str, transcript) -> str:
    """``--report`` line: real-time factor, mean spike rate, multiplications per frame and vs a GRU."""
    ops = transcript.ops
    rates = ops.spike_rates()
    spikes = f"spike rate {sum(rates.values()) / len(rates):.3f}" if rates else "no spiking layers"
    return (
        f"{path}: {transcript.duration:.2f} s audio in {transcript.seconds:.2f} s "
        f"(RTF {transcript.rtf:.3f}); "
        f"{spikes}; {ops.mults * ops.utterances / max(1, ops.frames):,.0f} mults/frame, "
        f"{ops.ratio_to_gru:.3f} x a same-size GRU"
    )


def transcribe(args: argparse.Namespace, out: TextIO) -> int:
    """Runs ``snn-asr transcribe``; returns the exit status."""
    from snn_asr.inference.asr import SpikingASR  # deferred: speechbrain is slow to import

    asr = SpikingASR.from_hparams(source=args.model_dir, run_opts={"device": args.device})
    asr.event_driven = args.event_driven
    beam, lm = asr.folder_decoding()  # the folder's own settings, unless told otherwise
    beam = beam if args.beam is None else args.beam
    lm = args.lm or (None if args.no_lm or beam <= 0 else lm)
    asr.set_decoder(beam, lm, args.lm_weight, args.lm_bonus)
    paths = expand_inputs(args.inputs, args.list)
    if not paths:
        raise DataError("no input files (give audio files, folders or --list FILE)")
    status = 0
    for path in _progress(paths):
        try:
            transcript = asr.transcribe_path(
                path, chunk_seconds=args.chunk_seconds or None, report=args.report
            )
        except DataError as err:
            tqdm.write(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        write_result(out, args.format, path, transcript)
        if not transcript.text:
            tqdm.write(
                f"warning: {path}: empty transcript (silence, or no speech recognised)", file=sys.stderr
            )
        if args.report:
            tqdm.write(report_line(path, transcript), file=sys.stderr)
    return status


def _progress(paths: list[str]) -> Iterator[str]:
    """SpeechBrain-style tqdm bar over many files (on stderr; hidden for one file or a non-terminal)."""
    return tqdm(paths, desc="transcribing", unit="file", dynamic_ncols=True, disable=len(paths) < 2 or None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snn-asr`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8") as out:
                return transcribe(args, out)
        return transcribe(args, sys.stdout)
    except (DataError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
