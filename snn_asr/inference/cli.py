"""The ``snn-asr`` command: transcribe audio files or a live stream with an exported model (see docs).

::

    snn-asr transcribe MODEL_DIR a.wav b.flac more/ --list files.txt --format json
    snn-asr transcribe MODEL_DIR talk.mp3 --format srt --output talk.srt
    snn-asr transcribe MODEL_DIR clips/ --format all --output-dir subs/
    snn-asr transcribe MODEL_DIR a.raw --raw-rate 16000 --raw-encoding s16le
    sox a.wav -t raw -r 16000 -e signed -b 16 -c 1 - | snn-asr stream MODEL_DIR -

Inputs are audio files (any format ``soundfile`` reads: WAV, FLAC, OGG, MP3, ...; any sample rate
and channel count, resampled and downmixed), headerless PCM (``.raw``/``.pcm`` with
``--raw-rate``/``--raw-encoding``), ``-`` (one file on stdin: headered audio, or PCM with
``--raw-rate``), folders (searched recursively for audio) and ``--list`` files (one path a line).
Results go to stdout (or ``--output``; ``--output-dir DIR`` writes ``DIR/<stem>.<format>`` per input):

- ``text``: ``<path>\\t<transcript>``;
- ``json``: JSON Lines, ``{"file", "text", "duration", "words": [{"text", "start", "end"}],
  "tokens": [...]}`` (times in seconds; ``tokens`` empty with beam search);
- ``ctm``: NIST CTM, ``<file stem> 1 <start> <duration> <word>`` per word;
- ``srt``, ``vtt``, ``tsv``: subtitles as Whisper writes them, cues made of the word times
  (:mod:`snn_asr.inference.formats`); ``all``: one file of each format.

Times count CTC frames of the encoder's output, each the Fbank hop times the encoder's time
subsampling (a CNN front end's stride, a CRDNN's pooling). A word's time is where CTC's peaks
for it lie, not the sound: it starts at its first token's peak and ends with its last token's
peak run (greedy) or one frame after that token's first frame (beam search). CTC peaks are a
few frames long, so a word's duration is tens of milliseconds, not how long it was spoken.

Nothing is left out silently. A bad input prints one ``error:`` line on stderr naming it and the
others are still transcribed; a folder's non-audio files are counted and named in a ``warning:``
line, a folder without audio is an error, and a decoder's own complaints (libmpg123's) are folded
into our lines. The exit status is then 1 (2 for a bad model folder or options). Audio that gives
an empty transcript (e.g. silence) is not an error: its line has empty text and stderr gets a
``warning:`` line. Files longer than ``--chunk-seconds`` are decoded in chunks through the
encoder's state.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from snn_asr.dataio import AudioError, DataError, load_audio, read_text_lines
from snn_asr.inference.endpointing import Endpointing
from snn_asr.inference.formats import FORMATS, MANY_FILE_FORMATS, SUFFIXES, CueOptions, write_result
from snn_asr.inference.onnx_runtime import ONNX_FILE
from snn_asr.locking import exclusive
from snn_asr.raw_pcm import RAW_ENCODINGS, read_raw_pcm
from snn_asr.stderr_capture import quiet_stderr

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".sph", ".mp3", ".opus", ".aiff", ".aif"}
RAW_SUFFIXES = {".raw", ".pcm"}
"""Headerless PCM: read with ``--raw-rate``/``--raw-encoding``, an error naming the fix without them."""
STDIN = "-"
BACKENDS = ("auto", "torch", "onnxruntime")


def add_raw_options(p: argparse.ArgumentParser, default_rate: int | None = None) -> None:
    """``--raw-rate``, ``--raw-encoding`` and ``--raw-channels``: how to read headerless PCM (sox-style)."""
    p.add_argument(
        "--raw-rate",
        type=int,
        default=default_rate,
        metavar="HZ",
        help="sample rate of .raw/.pcm and stdin PCM",
    )
    p.add_argument("--raw-encoding", default="s16le", choices=tuple(RAW_ENCODINGS), help="sample encoding")
    p.add_argument("--raw-channels", type=int, default=1, metavar="N", help="interleaved channels")


def add_model_dir(p: argparse.ArgumentParser) -> None:
    """``MODEL_DIR`` and ``--trust-model-code`` (a folder's YAML is code: snn_asr.inference.trust)."""
    p.add_argument("model_dir", help="exported model folder (tools/export_model.py)")
    p.add_argument(
        "--trust-model-code",
        action="store_true",
        help="load a model folder whose hyperparams.yaml uses modules beyond speechbrain, snn_asr, torch "
        "and sentencepiece (it runs what it names: only for folders you trust)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="torch, or onnxruntime for a folder of tools/export_onnx.py (auto: what the folder holds)",
    )


def load_model(args: argparse.Namespace, device: str = "cpu"):
    """The ``SpikingASR`` of ``MODEL_DIR``, after checking ``--backend`` against what the folder holds."""
    from snn_asr.inference.asr import SpikingASR  # deferred: speechbrain is slow to import

    folder = Path(args.model_dir)
    onnx = (folder / ONNX_FILE).is_file()
    if args.backend == "onnxruntime" and not onnx and folder.is_dir():
        raise DataError(
            f"{str(folder)!r} is a torch model folder; export it for onnxruntime first: "
            f"python tools/export_onnx.py {folder} OUT_DIR, then pass OUT_DIR"
        )
    if args.backend == "torch" and onnx:
        raise DataError(f"{str(folder)!r} is an ONNX folder ({ONNX_FILE}): pass --backend onnxruntime")
    if onnx and device != "cpu":
        raise DataError(f"the onnxruntime backend runs on the CPU here; drop --device {device}")
    return SpikingASR.from_hparams(
        source=args.model_dir, run_opts={"device": device}, local_only=True, trust_code=args.trust_model_code
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snn-asr", description="Speech recognition with snn-asr models.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("transcribe", help="transcribe audio files", description=__doc__.split("\n\n")[0])
    add_model_dir(p)
    p.add_argument("inputs", nargs="*", help="audio files or folders; - reads one file from stdin")
    p.add_argument(
        "--list", action="append", default=[], metavar="FILE", help="file of input paths, one a line"
    )
    p.add_argument(
        "--format",
        choices=FORMATS + ("all",),
        default="text",
        help="json/ctm/srt/vtt/tsv add word times: where CTC's peaks lie (a word's duration is its peaks' "
        "tens of ms, not its spoken length; see docs/inference.md); all: one file of each format",
    )
    p.add_argument(
        "--output", type=Path, help="write results here instead of stdout (all: NAME.txt, NAME.srt, ...)"
    )
    p.add_argument("--output-dir", type=Path, help="one file per input and format: DIR/<input stem>.<format>")
    cue = CueOptions()
    p.add_argument("--max-words", type=int, default=cue.max_words, help="subtitles: most words a cue")
    p.add_argument("--max-cue-seconds", type=float, default=cue.max_seconds, help="subtitles: longest cue")
    p.add_argument(
        "--max-pause", type=float, default=cue.max_pause, help="subtitles: a longer pause starts a new cue"
    )
    p.add_argument(
        "--max-line-width", type=int, default=cue.max_line_width, help="subtitles: characters a cue"
    )
    add_raw_options(p)
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
        "--no-rnnlm", action="store_true", help="beam search without re-ranking by the folder's RNNLM"
    )
    p.add_argument("--rnnlm-weight", type=float, help="RNNLM weight (default: the recipe's rnnlm_weight)")
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
    add_stream_parser(commands)
    p = commands.add_parser(
        "demo",
        help="a web page: record or upload audio, see the transcript, spikes and cost (needs Gradio)",
        description="Serves a Gradio page for MODEL_DIR (pip install 'snn-asr[demo]'): record or upload "
        "audio; see the transcript with word times, a spike raster, spike rates and mults vs a GRU.",
    )
    add_model_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    return parser


def add_stream_parser(commands) -> None:
    """``snn-asr stream``: live decoding of PCM on stdin or a microphone (snn_asr.inference.streaming)."""
    p = commands.add_parser(
        "stream",
        help="decode a live stream: PCM on stdin, or a microphone",
        description="Live decoding: partial hypotheses on one terminal line (stderr), a final line per "
        "utterance (stdout). E.g. arecord -f S16_LE -r 16000 -c 1 | snn-asr stream MODEL_DIR -",
    )
    add_model_dir(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("stdin", nargs="?", choices=[STDIN], help="- reads headerless PCM from stdin")
    source.add_argument("--mic", action="store_true", help="a microphone (pip install sounddevice)")
    add_raw_options(p, default_rate=16000)
    p.add_argument("--chunk-ms", type=int, default=160, help="audio per encoder step (at least 160 ms)")
    ends = Endpointing()
    p.add_argument(
        "--silence-db",
        type=float,
        default=ends.silence_db,
        help="a 10 ms hop quieter than this (dBFS) is silent",
    )
    p.add_argument(
        "--min-silence", type=float, default=ends.min_silence, help="seconds of silence that end an utterance"
    )
    p.add_argument("--timestamps", action="store_true", help="final lines as <start>\\t<end>\\t<text>")
    p.add_argument(
        "--dense", action="store_true", help="the dense (training-time) encoder, not the event-driven one"
    )
    p.add_argument("--report", action="store_true", help="per-chunk latency on stderr, and a summary")


@dataclass
class Inputs:
    """What :func:`expand_inputs` found: audio paths, and a line for each input left out (never silently)."""

    paths: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _names(paths: list[Path], shown: int = 3) -> str:
    names = ", ".join(p.name for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def expand_inputs(inputs: list[str], lists: list[str]) -> Inputs:
    """Input paths: files as given, folders expanded to their audio files (sorted), list files read.

    A folder's other files are counted and named in a warning; a folder without audio is an error.

    Example
    -------
    >>> expand_inputs(["a.wav", "missing/"], []).paths
    ['a.wav', 'missing/']
    """
    found = Inputs()
    paths = list(inputs)
    for list_file in lists:
        paths += [line.strip() for line in read_text_lines(list_file) if line.strip()]
    for path in paths:
        folder = Path(path)
        if path == STDIN or not folder.is_dir():
            found.paths.append(path)
            continue
        unreadable: list[OSError] = []  # rglob would skip a folder it cannot list, silently
        walk = os.walk(folder, onerror=unreadable.append)
        files = sorted(Path(root, name) for root, _, names in walk for name in names)
        files = [p for p in files if p.is_file()]
        audio = [p for p in files if p.suffix.lower() in AUDIO_SUFFIXES | RAW_SUFFIXES]
        others = [p for p in files if p not in audio]
        found.paths += [str(p) for p in audio]
        for err in unreadable:
            fix = "check its permissions (chmod +rx)"
            found.errors.append(f"folder {err.filename!r} cannot be read ({err.strerror}); {fix}")
        if not audio and not any(err.filename == str(folder) for err in unreadable):
            what = f"only {len(others)} other files ({_names(others)})" if others else "no files"
            found.errors.append(f"folder {path!r} holds no audio files ({what}); give audio files or folders")
        elif others:
            found.warnings.append(
                f"folder {path!r}: left out {len(others)} files that are not audio by their names "
                f"({_names(others)}); audio: {', '.join(sorted(AUDIO_SUFFIXES | RAW_SUFFIXES))}"
            )
    return found


def read_input(path: str, sample_rate: int, args: argparse.Namespace) -> torch.Tensor:
    """(samples,) waveform of an input: an audio file, headerless PCM (``--raw-*``), or stdin (``-``)."""
    raw = (args.raw_rate, args.raw_encoding, args.raw_channels)
    fix = "pass its format, e.g. --raw-rate 16000 --raw-encoding s16le"
    if path == STDIN:
        data = sys.stdin.buffer.read()
        if args.raw_rate:
            return read_raw_pcm(data, *raw, sample_rate=sample_rate)
        with tempfile.NamedTemporaryFile(suffix=".audio") as copy:  # a headered file (WAV, FLAC) on stdin
            copy.write(data)
            copy.flush()
            try:
                return load_audio(copy.name, sample_rate)
            except AudioError as err:
                raise AudioError(
                    f"stdin: {str(err).split(': ', 1)[1]} (headerless PCM on stdin: {fix})"
                ) from None
    if Path(path).suffix.lower() in RAW_SUFFIXES:
        if not args.raw_rate:
            raise AudioError(f"{path!r} is headerless PCM, which holds no sample rate or encoding; {fix}.")
        return read_raw_pcm(path, *raw, sample_rate=sample_rate)
    return load_audio(path, sample_rate)


def output_names(paths: list[str], directory: Path) -> dict[str, Path]:
    """``DIR/<stem>`` for each input (stdin: ``stdin``); a repeated stem gets ``-2``, ``-3``, ..."""
    names: dict[str, Path] = {}
    taken: set[str] = set()
    for path in paths:
        stem = "stdin" if path == STDIN else Path(path).stem
        name, n = stem, 1
        while name in taken:
            n += 1
            name = f"{stem}-{n}"
        taken.add(name)
        names[path] = directory / name
    return names


def check_outputs(args: argparse.Namespace, count: int) -> list[str]:
    """The formats to write; a subtitle format for several inputs without ``--output-dir`` is an error."""
    formats = list(FORMATS) if args.format == "all" else [args.format]
    if args.output_dir is None and count > 1 and any(f not in MANY_FILE_FORMATS for f in formats):
        raise ValueError(
            f"--format {args.format} writes one file per input: with {count} inputs, add --output-dir DIR"
        )
    if args.format == "all" and args.output_dir is None and args.output is None:
        raise ValueError("--format all writes one file of each format: add --output NAME or --output-dir DIR")
    return formats


def transcribe(args: argparse.Namespace, out: TextIO) -> int:
    """Runs ``snn-asr transcribe``; returns the exit status."""

    found = expand_inputs(args.inputs, args.list)
    if not found.paths and not found.errors:
        raise DataError("no input files (give audio files, folders, - for stdin, or --list FILE)")
    formats = check_outputs(args, len(found.paths))
    asr = load_model(args, args.device)
    asr.event_driven = args.event_driven
    beam, lm = asr.folder_decoding()  # the folder's own settings, unless told otherwise
    beam = beam if args.beam is None else args.beam
    lm = args.lm or (None if args.no_lm or beam <= 0 else lm)
    rnnlm = None if args.no_rnnlm or beam <= 0 else asr.folder_rnnlm()
    with quiet_stderr() as noise:  # kenlm's C++ loader prints a progress bar of stars on fd 2
        asr.set_decoder(beam, lm, args.lm_weight, args.lm_bonus, rnnlm, args.rnnlm_weight)
    if any("rror" in line for line in noise):
        raise DataError(
            f"the n-gram {str(lm)!r} did not load ({' '.join(noise)[:160]}); pass a valid ARPA file"
        )
    options = CueOptions(args.max_words, args.max_cue_seconds, args.max_pause, args.max_line_width)
    for line in found.warnings:
        tqdm.write(f"warning: {line}", file=sys.stderr)
    for line in found.errors:
        tqdm.write(f"error: {line}", file=sys.stderr)
    failed, reports = 0, []
    with ExitStack() as files:
        if args.output_dir is not None:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            names = output_names(found.paths, args.output_dir)
        elif args.format == "all":
            base = args.output.with_suffix("")
            shared = {
                f: files.enter_context(open(base.with_suffix(SUFFIXES[f]), "w", encoding="utf-8"))
                for f in formats
            }
        for path in _progress(found.paths):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", category=UserWarning)
                    signal = read_input(path, asr.sample_rate, args)
                transcript = asr.transcribe_signal(
                    signal, chunk_seconds=args.chunk_seconds or None, report=args.report
                )
            except DataError as err:
                tqdm.write(f"error: {err}", file=sys.stderr)
                failed += 1
                continue
            for warning in caught:
                tqdm.write(f"warning: {warning.message}", file=sys.stderr)
            for fmt in formats:
                if args.output_dir is not None:
                    with open(names[path].with_suffix(SUFFIXES[fmt]), "w", encoding="utf-8") as one:
                        write_result(one, fmt, path, transcript, options)
                else:
                    write_result(shared[fmt] if args.format == "all" else out, fmt, path, transcript, options)
            if not transcript.text:
                tqdm.write(
                    f"warning: {path}: empty transcript (silence, or no speech recognised)", file=sys.stderr
                )
            if args.report:
                tqdm.write(report_line(path, transcript), file=sys.stderr)
                reports.append(transcript)
    if len(reports) > 1:
        tqdm.write(report_total(reports), file=sys.stderr)
    bad = failed + len(found.errors)
    if bad:
        total = len(found.paths) + len(found.errors)
        tqdm.write(f"error: {bad} of {total} inputs gave no transcript (each named above)", file=sys.stderr)
    return 1 if bad else 0


def report_line(path: str, transcript) -> str:
    """``--report`` line: real-time factor, mean spike rate, multiplications per frame and vs a GRU."""
    ops = transcript.ops
    rates = ops.spike_rates()
    timing = (
        f"{path}: {transcript.duration:.2f} s audio in {transcript.seconds:.2f} s (RTF {transcript.rtf:.3f})"
    )
    if not rates and not ops.mults:  # an ONNX graph: its layers are not torch modules to count
        return f"{timing}; no op counts (the encoder is not torch's here: count them with --backend torch)"
    spikes = f"spike rate {sum(rates.values()) / len(rates):.3f}" if rates else "no spiking layers"
    return (
        f"{timing}; {spikes}; {ops.mults_per_frame:,.0f} mults/frame, "
        f"{ops.ratio_to_gru:.3f} x a same-size GRU"
    )


def report_total(transcripts: list) -> str:
    """``--report``'s last line over every file: audio, real-time factor, rates, multiplications, energy."""
    from snn_asr.ops import OpsReport

    audio = sum(t.duration for t in transcripts)
    seconds = sum(t.seconds for t in transcripts)
    ops = OpsReport.merge([t.ops for t in transcripts])
    head = f"all {len(transcripts)} files: {audio:.1f} s audio in {seconds:.1f} s (RTF {seconds / audio:.3f})"
    rates = ops.spike_rates()
    if not rates and not ops.mults:
        return head
    spikes = " / ".join(f"{r:.3f}" for r in rates.values()) or "no spiking layers"
    return (
        f"{head}; spike rates {spikes}; {ops.mults_per_frame:,.0f} mults/frame, "
        f"{ops.ratio_to_gru:.3f} x a same-size GRU; about {ops.energy_uj:.0f} uJ an utterance "
        f"(GRU {ops.gru_energy_uj:.0f} uJ)"
    )


def pcm_blocks(args: argparse.Namespace, block_frames: int) -> Iterator[bytes]:
    """Raw PCM blocks of ``block_frames`` sample frames from stdin, or from ``sounddevice``'s microphone."""
    width = RAW_ENCODINGS[args.raw_encoding][2] * args.raw_channels
    if not args.mic:
        while block := sys.stdin.buffer.read(block_frames * width):
            yield block
        return
    try:
        import sounddevice  # an optional extra: pip install sounddevice
    except ImportError:
        raise DataError("--mic needs the sounddevice package: pip install sounddevice") from None
    if args.raw_encoding not in ("s16le", "s32le", "f32le"):
        raise DataError("--mic records s16le, s32le or f32le; pass one with --raw-encoding")
    dtype = {"s16le": "int16", "s32le": "int32", "f32le": "float32"}[args.raw_encoding]
    with sounddevice.RawInputStream(samplerate=args.raw_rate, channels=args.raw_channels, dtype=dtype) as mic:
        while True:
            block, _ = mic.read(block_frames)
            yield bytes(block)


def stream(args: argparse.Namespace, out: TextIO) -> int:
    """Runs ``snn-asr stream``; returns the exit status."""
    from snn_asr.inference.streaming import LiveTranscriber

    asr = load_model(args)
    if args.raw_rate != asr.sample_rate:
        raise DataError(
            f"the model expects {asr.sample_rate} Hz and the stream is {args.raw_rate} Hz; resample it "
            f"before the pipe (e.g. sox IN -t raw -r {asr.sample_rate} -e signed -b 16 -c 1 -)"
        )
    asr.event_driven = not args.dense
    live = LiveTranscriber(asr, args.chunk_ms // 10, Endpointing(args.silence_db, args.min_silence))
    terminal = sys.stderr.isatty()
    shown = 0

    def show(events) -> None:
        nonlocal shown
        for event in events:
            if event.kind == "partial" and terminal:
                line = event.text[-100:]
                sys.stderr.write("\r" + line + " " * max(0, shown - len(line)))
                sys.stderr.flush()
                shown = len(line)
            elif event.kind == "final":
                if terminal and shown:
                    sys.stderr.write("\r" + " " * shown + "\r")
                    shown = 0
                times = f"{event.start:.2f}\t{event.end:.2f}\t" if args.timestamps else ""
                out.write(f"{times}{event.text}\n")
                out.flush()
        if args.report:
            for timing in live.timings[reported:]:
                sys.stderr.write(
                    f"chunk: {timing.audio * 1000:.0f} ms of audio in {timing.seconds * 1000:.1f} ms\n"
                )

    block = max(1, args.chunk_ms * args.raw_rate // 1000)
    reported = 0
    try:
        for data in pcm_blocks(args, block):
            show(live.push(read_raw_pcm(data, args.raw_rate, args.raw_encoding, args.raw_channels, None)))
            reported = len(live.timings)
    except KeyboardInterrupt:  # Ctrl-C ends a microphone stream: decode what was heard
        pass
    show(live.finish())
    if args.report and live.timings:
        sys.stderr.write(latency_summary(live.timings) + "\n")
    return 0


def latency_summary(timings) -> str:
    """``--report``'s last line: chunks, median and 95th-percentile processing time, real-time factor."""
    seconds = sorted(t.seconds for t in timings)
    audio = sum(t.audio for t in timings)
    p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
    return (
        f"stream: {len(timings)} chunks, {audio:.2f} s of audio; per chunk median "
        f"{seconds[len(seconds) // 2] * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms; RTF {sum(seconds) / audio:.3f}"
    )


def _progress(paths: list[str]) -> Iterator[str]:
    """SpeechBrain-style tqdm bar over many files (on stderr; hidden for one file or a non-terminal)."""
    return tqdm(paths, desc="transcribing", unit="file", dynamic_ncols=True, disable=len(paths) < 2 or None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snn-asr`` console script."""
    parser = build_parser()
    # Inputs after options (``transcribe MODEL --no-lm a.wav``): argparse (before Python 3.12) ends
    # the ``inputs`` list at the first option, and its intermixed parsing refuses subcommands.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "transcribe" and not any(e.startswith("-") and e != STDIN for e in extra):
        args.inputs = [*args.inputs, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # SpeechBrain's kenlm scorer warns that a small LM (a recipe's n-gram of its own transcripts)
    # has few unigrams: true of every bundled model, and nothing the user can act on. A filter,
    # not a level: SpeechBrain sets its loggers' levels when it is imported, later than this.
    logging.getLogger("speechbrain.integrations.decoders.kenlm_scorer").addFilter(
        lambda record: "unigrams passed as vocabulary" not in record.getMessage()
    )
    try:
        with ExitStack() as locks:  # one writer at a time (--format all: NAME.* share NAME's lock)
            for target in [args.output, args.output_dir] if args.command == "transcribe" else []:
                if target is not None:
                    beside = target.with_name(f".{target.name}.lock")
                    name = target / ".snn-asr.lock" if target == args.output_dir else beside
                    fix = "wait for the other snn-asr to finish, or pick another output"
                    locks.enter_context(exclusive(name, repr(str(target)), fix))
            return run_command(args)
    except (DataError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace) -> int:
    """The chosen command (its exit status)."""
    if args.command == "stream":
        return stream(args, sys.stdout)
    if args.command == "demo":
        from snn_asr.inference.web_demo import serve  # deferred: Gradio is optional and slow to import

        serve(args.model_dir, args.host, args.port, trust_code=args.trust_model_code)
        return 0
    if args.output and args.format != "all" and args.output_dir is None:
        with open(args.output, "w", encoding="utf-8") as out:
            return transcribe(args, out)
    return transcribe(args, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
