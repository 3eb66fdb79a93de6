#!/usr/bin/env python3
"""Fuzzes what users feed snn-asr: mutated real audio and transcripts, through ``snn-asr transcribe``
and the AN4 and LibriSpeech preparation scripts. Seeded, bounded in cases and seconds.

Each audio case is one mutated file (header fields, truncation at each structural boundary,
random bytes, NaN/Inf/clipped/DC float samples, 0- and 1-sample files, a folder named like a
file, an empty folder) of a real FSDD recording in WAV, FLAC, NIST SPHERE or MP3, transcribed
between two good files in one ``snn-asr transcribe`` call, then put in a small AN4 and LibriSpeech
tree whose preparation must accept or reject it, and whose accepted files the recipes' data
loading (:func:`snn_asr.recipes.data.read_audio`) must decode or reject. Each transcript case
is an AN4 ``.transcription`` or LibriSpeech ``trans.txt`` with a BOM, CRLF line ends, a NUL,
non-UTF-8 bytes, empty lines, unknown characters, or a line cut short. A case passes when it
gets a transcript (or manifests) or one ``error:``/``warning:`` line naming its file, and:

- no traceback (an exception our code does not turn into one line);
- no hang (each case under ``--case-seconds``, by ``SIGALRM``);
- no good file of the batch lost, no stray line from a C library on the terminal.

Findings are printed and written as JSON (``--report``). Run::

    python tools/fuzz_inputs.py --cases 2000 --seed 0 --report fuzz.json
    python tools/fuzz_inputs.py --long-file   # also a one-hour file: peak memory stays bounded
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "recipes" / "AN4"), str(ROOT / "recipes" / "LibriSpeech")]

from an4_prepare import prepare_an4  # noqa: E402
from librispeech_prepare import prepare_librispeech  # noqa: E402

from snn_asr.dataio import DataError, read_manifest  # noqa: E402
from snn_asr.inference.cli import main as snn_asr_main  # noqa: E402
from snn_asr.recipes.data import read_audio  # noqa: E402
from snn_asr.stderr_capture import quiet_stderr  # noqa: E402

SEED_AUDIO = ROOT / "tests" / "data" / "fsdd" / "recordings" / "3_george_0.wav"
GOOD_AUDIO = [ROOT / "tests" / "data" / "fsdd" / "recordings" / f"{d}_jackson_0.wav" for d in (1, 7)]
GOOD_16K: list[Path] = []  # the same at 16 kHz, the recipes' rate (made in the work folder)
MODEL = ROOT / "pretrained" / "snn-digits"
WORDS = "THREE"
LOCKED = "locked"  # an input so named is made unreadable (chmod 000) where it is put
UNPRIVILEGED = "SNN_ASR_FUZZ_UNPRIVILEGED"


@dataclass
class Outcome:
    """One case: what was fed, where, and what came back (``finding``: empty when it passed)."""

    case: str
    target: str
    result: str
    finding: str = ""
    detail: str = ""


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raises :class:`CaseTimeout` in the case after ``seconds`` (SIGALRM: the main thread, Unix)."""

    def expire(*_):
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------------------- audio mutations
def at_16k(path: Path) -> np.ndarray:
    """A recording resampled to 16 kHz (linear interpolation: enough for a fuzzing seed)."""
    data, rate = sf.read(path, dtype="float32")
    return np.interp(np.arange(0, len(data), rate / 16000), np.arange(len(data)), data).astype("float32")


def encoded(fmt: str, folder: Path) -> Path:
    """The seed recording at 16 kHz, the recipes' rate, in ``fmt``."""
    data = at_16k(SEED_AUDIO)
    suffix, options = {
        "wav": (".wav", {"subtype": "PCM_16"}),
        "flac": (".flac", {}),
        "sph": (".sph", {"format": "NIST", "subtype": "PCM_16"}),
        "mp3": (".mp3", {"format": "MP3"}),
    }[fmt]
    path = folder / f"seed{suffix}"
    sf.write(path, data, 16000, **options)
    return path


def wav_boundaries(data: bytes) -> list[int]:
    """Offsets where a WAV's structure changes: RIFF header, fmt fields, each chunk's header and data."""
    cuts = [0, 4, 8, 12, 16, 20, 22, 24, 28, 32, 34, 36]
    at = 12
    while at + 8 <= len(data):
        size = struct.unpack_from("<I", data, at + 4)[0]
        cuts += [at, at + 4, at + 8, min(len(data), at + 8 + size)]
        at += 8 + size + (size & 1)
    return sorted({c for c in cuts if c < len(data)} | {len(data) - 1, len(data) // 2})


def audio_mutations(
    rng: random.Random, folder: Path, fixed: bool = True
) -> Iterator[tuple[str, Callable[[Path], Path]]]:
    """``(name, make)`` pairs: ``make(dir)`` writes the mutated input in ``dir`` and returns its path.

    ``fixed``: also the mutations that do not draw on ``rng`` (header values, cuts, special signals).
    """
    seeds = {fmt: encoded(fmt, folder) for fmt in ("wav", "flac", "sph", "mp3")}
    wav = seeds["wav"].read_bytes()

    def writer(name: str, data: bytes) -> Callable[[Path], Path]:
        def make(d: Path) -> Path:
            (d / name).write_bytes(data)
            return d / name

        return make

    if fixed:  # first, so that a short run has them

        def folder_named_wav(d: Path) -> Path:
            (d / "folder.wav").mkdir()
            return d / "folder.wav"

        def empty_folder(d: Path) -> Path:
            (d / "empty").mkdir()
            return d / "empty"

        def unreadable_file(d: Path) -> Path:  # readable until put in place (transcribe_case, put)
            shutil.copyfile(seeds["wav"], d / f"{LOCKED}.wav")
            return d / f"{LOCKED}.wav"

        def unreadable_folder(d: Path) -> Path:
            (d / f"{LOCKED}_folder").mkdir()
            shutil.copyfile(seeds["wav"], d / f"{LOCKED}_folder" / "a.wav")
            return d / f"{LOCKED}_folder"

        yield "folder named .wav", folder_named_wav
        yield "empty folder", empty_folder
        yield "unreadable file", unreadable_file
        yield "unreadable folder", unreadable_folder

    def patched(offset: int, fmt: str, value: int) -> bytes:
        data = bytearray(wav)
        struct.pack_into(fmt, data, offset, value)
        return bytes(data)

    fields = {
        "channels": (22, "<H"), "rate": (24, "<I"), "byte_rate": (28, "<I"), "align": (32, "<H"),
        "bits": (34, "<H"), "format": (20, "<H"), "riff_size": (4, "<I"), "data_size": (40, "<I"),
    }  # fmt: skip
    values = [
        0,
        1,
        2,
        3,
        7,
        8,
        17,
        24,
        32,
        64,
        85,
        255,
        8000,
        44100,
        192000,
        0xFFFE,
        0xFFFF,
        2**31,
        2**32 - 1,
    ]
    for field, (offset, fmt) in fields.items() if fixed else ():
        for value in values:
            if value < 2 ** (8 * struct.calcsize(fmt)):
                yield f"wav {field}={value}", writer(f"{field}_{value}.wav", patched(offset, fmt, value))
    for cut in wav_boundaries(wav) if fixed else ():
        yield f"wav cut at {cut}", writer(f"cut_{cut}.wav", wav[:cut])
    for fmt, path in seeds.items():
        data = path.read_bytes()
        for cut in sorted({0, 1, 4, 12, 64, 128, 1024, len(data) // 2, len(data) - 1}) if fixed else ():
            if cut < len(data):
                yield f"{fmt} cut at {cut}", writer(f"cut_{cut}{path.suffix}", data[:cut])
        for _ in range(4):
            head = bytearray(data)
            for i in rng.sample(range(min(len(head), 1024)), 8):
                head[i] = rng.randrange(256)
            yield f"{fmt} header bytes", writer(f"head_{rng.randrange(10**6)}{path.suffix}", bytes(head))
        for _ in range(3):
            body = bytearray(data)
            start = rng.randrange(len(body))
            body[start : start + 256] = bytes(rng.randrange(256) for _ in range(256))
            yield f"{fmt} random span", writer(f"span_{rng.randrange(10**6)}{path.suffix}", bytes(body))
    yield "random bytes .wav", writer("noise.wav", bytes(rng.randrange(256) for _ in range(4000)))
    if not fixed:
        return
    yield "text named .flac", writer("notes.flac", b"this is not audio\n")
    samples, _ = sf.read(seeds["wav"], dtype="float32")
    for name, signal_ in {
        "nan": np.where(np.arange(len(samples)) % 50 == 0, np.nan, samples),
        "inf": np.where(np.arange(len(samples)) % 50 == 0, np.inf, samples),
        "-inf": np.full(len(samples), -np.inf),
        "huge": samples * 1e30,
        "clipped": np.clip(samples * 100, -1, 1),
        "dc": samples + 0.9,
        "silence": np.zeros(len(samples)),
        "1 sample": samples[:1],
        "0 samples": samples[:0],
    }.items():
        yield f"float wav {name}", partial(float_wav, signal_.astype("float32"), name.replace(" ", "_"))


def float_wav(samples: np.ndarray, name: str, folder: Path) -> Path:
    path = folder / f"float_{name}.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    return path


# ---------------------------------------------------------------------------- running a case
def run_transcribe(path: Path) -> tuple[str, str]:
    """``snn-asr transcribe`` of [good, mutated, good]: ``(result, finding detail or "")``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), quiet_stderr() as noise:
        status = snn_asr_main(
            ["transcribe", str(MODEL), str(GOOD_AUDIO[0]), str(path), str(GOOD_AUDIO[1]), "--beam", "0"]
        )
    lines = err.getvalue().splitlines()
    done = {line.split("\t")[0] for line in out.getvalue().splitlines()}
    if noise:
        return "noise", f"a C library wrote to the terminal: {noise[0][:120]}"
    if not {str(g) for g in GOOD_AUDIO} <= done:
        return "lost", "a good file of the batch got no transcript"
    stray = [line for line in lines if not re.match(r"(error|warning): ", line)]
    if stray:
        return "stray", f"a line that is not ours: {stray[0][:120]}"
    named = any(str(path) in line for line in lines)
    if str(path) in done:
        return "transcript", ""
    if status == 1 and named:
        return "error line", ""
    if path.is_dir() and status == 1:  # a folder's files are named, or it is said to hold no audio
        return "error line", "" if any(path.name in line for line in lines) else "unnamed"
    return "unnamed", f"no transcript and no line naming it (status {status}): {lines[:2]}"


def put(source: Path, target: Path) -> None:
    """Copies a (mutated) input into a tree; one named :data:`LOCKED` loses its permissions there."""
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    if source.name.startswith(LOCKED):
        target.chmod(0)


def locked_tree(make_tree: Callable[[Path], Path], relative: str, root: Path) -> Path:
    """``make_tree``'s tree with the file ``relative`` unreadable (chmod 000)."""
    root = make_tree(root)
    (root / relative).chmod(0)
    return root


def an4_tree(root: Path, audio: Path | None = None, transcription: bytes | None = None) -> Path:
    """A small AN4 tree: 3 training speakers and 1 test speaker of good audio; ``audio`` replaces one file."""
    lines = []
    for i, speaker in enumerate(["fash", "fbbh", "mgah"]):
        target = root / "wav" / "an4_clstk" / speaker / f"an{i}-{speaker}-b.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        put(audio if audio is not None and i == 1 else GOOD_16K[i % 2], target)
        lines.append(f"<s> {WORDS} </s> (an{i}-{speaker}-b)")
    test = root / "wav" / "an4test_clstk" / "fcaw" / "an9-fcaw-b.wav"
    test.parent.mkdir(parents=True)
    shutil.copyfile(GOOD_16K[0], test)
    (root / "etc").mkdir()
    text = ("\n".join(lines) + "\n").encode()
    (root / "etc" / "an4_train.transcription").write_bytes(text if transcription is None else transcription)
    (root / "etc" / "an4_test.transcription").write_bytes(f"{WORDS} (an9-fcaw-b)\n".encode())
    return root


def librispeech_tree(root: Path, audio: Path | None = None, transcript: bytes | None = None) -> Path:
    """A small LibriSpeech tree: two utterances each in train-clean-100, dev-clean and test-clean."""
    for split in ("train-clean-100", "dev-clean", "test-clean"):
        chapter = root / split / "19" / "198"
        chapter.mkdir(parents=True)
        for i in range(2):
            flac = chapter / f"19-198-000{i}.flac"
            source = audio if audio is not None and split == "train-clean-100" and i == 1 else GOOD_16K[i]
            if source.is_dir() or source.suffix == ".flac":
                put(source, flac)
            else:
                try:
                    with quiet_stderr():  # the harness's own decoding: its noise is no finding
                        data, rate = sf.read(source, dtype="float32")
                    sf.write(flac, data, rate)
                except Exception:  # a mutated file soundfile cannot read stays as it is, named .flac
                    shutil.copyfile(source, flac)
                if source.name.startswith(LOCKED):
                    flac.chmod(0)
        text = f"19-198-0000 {WORDS}\n19-198-0001 {WORDS}\n".encode()
        (chapter / "19-198.trans.txt").write_bytes(
            text if transcript is None or split != "train-clean-100" else transcript
        )
    return root


MUTATED_NAMES = ("an1-fbbh-b", "19-198-0001", "an4_train.transcription", "19-198.trans.txt")
"""What a preparation's error must name: the file put in place of a good one, or the transcript file."""


def run_prepare(name: str, make_tree: Callable[[Path], Path], work: Path) -> tuple[str, str]:
    """A preparation script on a tree: manifests, or a one-line :class:`DataError` naming the file."""
    data = make_tree(work / "data")
    prepare = {"an4": partial(prepare_an4, dev_utterances=1), "librispeech": prepare_librispeech}[name]
    logged = io.StringIO()  # Python's lines (our warnings) apart from C libraries' (fd 2: noise)
    try:
        with contextlib.redirect_stderr(logged), quiet_stderr() as noise:
            prepare(data, work / "save")
    except DataError as err:
        message = str(err)
        if "\n" in message or not any(n in message for n in MUTATED_NAMES):
            return "unnamed", f"an error that does not name the file: {message[:160]}"
        return "error line", ""
    if noise:
        return "noise", noise[0][:120]
    try:  # the recipes' data loading: every manifest row decoded as a training batch would be
        for manifest in sorted((work / "save").glob("*.csv")):
            for row in read_manifest(manifest).values():
                read_audio(row["wav"])
    except DataError as err:
        named = any(n in str(err) for n in MUTATED_NAMES)
        return ("loading error line", "") if named else ("unnamed", f"loading: {str(err)[:160]}")
    return "manifests", ""


TRANSCRIPT_MUTATIONS = {
    "bom": lambda t: b"\xef\xbb\xbf" + t,
    "crlf": lambda t: t.replace(b"\n", b"\r\n"),
    "nul": lambda t: t.replace(b"THREE", b"TH\x00REE", 1),
    "latin-1": lambda t: t.replace(b"THREE", b"TH\xe9REE", 1),
    "empty lines": lambda t: b"\n\n" + t.replace(b"\n", b"\n\n"),
    "unknown chars": lambda t: t.replace(b"THREE", "THRÉE ☃ 3".encode(), 1),
    "cut line": lambda t: t[: len(t) // 2],
    "empty file": lambda t: b"",
    "no newline": lambda t: t.rstrip(b"\n"),
    "tabs": lambda t: t.replace(b" ", b"\t"),
}


def transcript_cases() -> Iterator[tuple[str, str, Callable[[Path], Path]]]:
    """``(case, recipe, make_tree)`` for each transcript mutation of AN4's and LibriSpeech's files."""
    an4 = "".join(f"<s> {WORDS} </s> (an{i}-{s}-b)\n" for i, s in enumerate(["fash", "fbbh", "mgah"]))
    librispeech = f"19-198-0000 {WORDS}\n19-198-0001 {WORDS}\n"
    yield "an4 transcription unreadable", "an4", partial(locked_tree, an4_tree, "etc/an4_train.transcription")
    trans = "train-clean-100/19/198/19-198.trans.txt"
    yield "trans.txt unreadable", "librispeech", partial(locked_tree, librispeech_tree, trans)
    for name, mutate in TRANSCRIPT_MUTATIONS.items():
        yield f"an4 transcription {name}", "an4", partial(an4_tree, transcription=mutate(an4.encode()))
        yield (
            f"trans.txt {name}",
            "librispeech",
            partial(librispeech_tree, transcript=mutate(librispeech.encode())),
        )


def transcribe_case(make: Callable[[Path], Path], folder: Path) -> tuple[str, str]:
    folder.mkdir()
    path = make(folder)
    if path.name.startswith(LOCKED):
        path.chmod(0)
    return run_transcribe(path)


def prepare_case(
    recipe: str, tree: Callable, make: Callable[[Path], Path] | None, folder: Path
) -> tuple[str, str]:
    """``recipe``'s preparation of ``tree`` (with the input ``make`` writes in place of one file)."""
    folder.mkdir()
    if make is None:
        return run_prepare(recipe, tree, folder)
    (folder / "input").mkdir()
    audio = make(folder / "input")
    return run_prepare(recipe, lambda root: tree(root, audio=audio), folder)


def one_case(case: str, target: str, run: Callable[[], tuple[str, str]], seconds: float) -> Outcome:
    try:
        with time_limit(seconds):
            result, detail = run()
    except CaseTimeout:
        return Outcome(case, target, "hang", "hang", f"over {seconds} s")
    except BaseException as err:  # what the user would see as a traceback
        if isinstance(err, KeyboardInterrupt):
            raise
        return Outcome(case, target, "traceback", "traceback", f"{type(err).__name__}: {str(err)[:160]}")
    finding = result if result in ("noise", "lost", "stray", "unnamed") else ""
    return Outcome(case, target, result, finding, detail)


def long_file_case(work: Path) -> Outcome:
    """A one-hour 16 kHz file: transcribed in chunks, the peak memory must stay bounded."""
    path = work / "one_hour.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as handle:
        for _ in range(60):
            handle.write((rng.standard_normal(16000 * 60) * 300).astype("int16"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = one_case("one-hour wav", "transcribe", lambda: run_transcribe(path), 3600)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    size = path.stat().st_size >> 20
    outcome.detail = f"peak RSS {peak / 1024:.0f} MiB (before {before / 1024:.0f} MiB); file {size} MiB"
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="most cases to run")
    parser.add_argument("--seconds", type=float, default=600, help="stop starting cases after this long")
    parser.add_argument("--case-seconds", type=float, default=60, help="a case longer than this is a hang")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, help="write every outcome here (JSON)")
    parser.add_argument("--long-file", action="store_true", help="also a one-hour file (memory bounded)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="snn-asr-fuzz-") as tmp:
        work = Path(tmp)
        plan: list[tuple[str, str, Callable[[], tuple[str, str]]]] = []
        seeds = work / "seeds"
        seeds.mkdir()
        for i, path in enumerate(GOOD_AUDIO):
            GOOD_16K.append(seeds / f"good{i}.wav")
            sf.write(GOOD_16K[-1], at_16k(path), 16000, subtype="PCM_16")
        for name, recipe, tree in transcript_cases():
            case = partial(prepare_case, recipe, tree, None, work / f"case{len(plan)}")
            plan.append((name, f"{recipe} prepare", case))
        for round_ in range(10**6):
            for name, make in audio_mutations(random.Random(rng.random()), seeds, fixed=round_ == 0):
                plan.append((name, "transcribe", partial(transcribe_case, make, work / f"case{len(plan)}")))
                for recipe, tree in (("an4", an4_tree), ("librispeech", librispeech_tree)):
                    case = partial(prepare_case, recipe, tree, make, work / f"case{len(plan)}")
                    plan.append((name, f"{recipe} prepare", case))
            if len(plan) >= args.cases:
                break
        bar = tqdm(plan[: args.cases], desc="fuzzing", unit="case", dynamic_ncols=True)
        for name, target, run in bar:
            if time.monotonic() - started > args.seconds:
                break
            outcomes.append(one_case(name, target, run, args.case_seconds))
        if args.long_file:
            outcomes.append(long_file_case(work))
        unlock(work)  # so that the temp folder can be deleted
    results = Counter(o.result for o in outcomes)
    findings = [o for o in outcomes if o.finding]
    print(f"{len(outcomes)} cases in {time.monotonic() - started:.0f} s: "
          + ", ".join(f"{n} {r}" for r, n in results.most_common()))  # fmt: skip
    if not reads_unreadable_files():
        print("unreadable-file cases: the files were unreadable to the code under test")
    else:
        print("unreadable-file cases: NOT TESTED, root reads any file (run as another user, or with setpriv)")
    for finding in findings[:20]:
        print(f"FINDING {finding.finding}: {finding.case} -> {finding.target}: {finding.detail}")
    if args.long_file:
        print(f"one-hour file: {outcomes[-1].result}; {outcomes[-1].detail}")
    if args.report:
        args.report.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 1 if findings else 0


def unlock(folder: Path) -> None:
    """Gives every folder under ``folder`` back its permissions (the unreadable-folder cases)."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            unlock(Path(entry.path))


def reads_unreadable_files() -> bool:
    """Whether this process reads a file with no read permission (root, with its override)."""
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0)
        try:
            open(probe.name, "rb").close()
        except PermissionError:
            return False
    return True


def without_root_override() -> None:
    """Re-runs this command as root without the power to read any file (``setpriv``), so that the
    unreadable-file cases test something; ``setpriv`` missing or refused: carries on as it is."""
    setpriv = shutil.which("setpriv")
    if os.environ.get(UNPRIVILEGED) or not setpriv or not reads_unreadable_files():
        return
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    if subprocess.run([*drop, "true"], capture_output=True).returncode == 0:
        os.environ[UNPRIVILEGED] = "1"
        os.execv(setpriv, [*drop, sys.executable, *sys.argv])


if __name__ == "__main__":
    without_root_override()
    sys.exit(main())
