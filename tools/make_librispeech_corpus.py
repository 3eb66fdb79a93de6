#!/usr/bin/env python3
"""Makes small corpora in LibriSpeech's layout: connected digits (real speech) or espeak-ng sentences.

::

    OUT/train-clean-100|dev-clean|test-clean/<speaker>/<chapter>/<speaker>-<chapter>-<NNNN>.flac
    OUT/train-clean-100|dev-clean|test-clean/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    OUT/SPEAKERS.TXT, OUT/README.TXT, OUT/CORPUS.JSON

FLAC is 16 kHz, 16-bit mono; ``trans.txt`` lines are ``<speaker>-<chapter>-<NNNN> WORDS``
in upper case, as in LibriSpeech, so ``recipes/LibriSpeech/librispeech_prepare.py`` and its
default splits read ``OUT`` as ``data_folder``.

``digits``: connected-digit utterances built from the Free Spoken Digit Dataset (FSDD;
files ``recordings/{digit}_{speaker}_{index}.wav``, 8 kHz, CC BY-SA 4.0): each utterance
joins 2-6 recordings of one speaker (each scaled to a common loudness, 5 ms fades) with
pauses of 40-250 ms and 100-300 ms of lead/trail, filled with a faint noise floor, and is
resampled to 16 kHz. **Bandwidth:** FSDD is recorded at 8 kHz, so the 16 kHz files hold nothing
above 4 kHz, and a model trained on them has never heard the 4-8 kHz band of ordinary 16 kHz
speech (:data:`BANDWIDTH`). The transcript is the digits as words (``ZERO ONE ...``). Splits are by
speaker: ``--test-speaker`` is held out for test-clean; dev-clean is a second held-out
speaker (``--dev-speaker``) or, by default, the FSDD's own held-out recordings (index 0-4)
of the training speakers, whose recordings 5-49 make train-clean-100. Any number of FSDD
speakers works (the full FSDD has six). ``--fsdd`` defaults to ``../shared/data/fsdd`` where it
is, else to the 400-recording sample the repository carries for its tests (``tests/data/fsdd``:
10 recordings per digit of george, jackson, nicolas and theo).

``espeak``: sentences from the grammar of ``tools/make_mini_timit.py`` (about 400 words),
spoken by espeak-ng voices (8 English accents x voice variants, own pitch and rate); train,
dev and test speakers are disjoint and no sentence appears twice.

Both are deterministic given ``--seed``; ``--size ci`` takes seconds (digits) or about
20 s (espeak) on 2 cores.

Examples::

    python tools/make_librispeech_corpus.py digits data/digits --size ci
    python tools/make_librispeech_corpus.py digits data/digits --fsdd /path/to/fsdd --test-speaker jackson
    python tools/make_librispeech_corpus.py espeak data/espeak_sentences --size ci
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO)]  # the sibling tool, and snn_asr without installing
import make_mini_timit as mmt  # noqa: E402  (voices, and 16 kHz conversion of espeak-ng speech)
from espeak_synthesis import synthesize  # noqa: E402
from sentence_grammar import SentenceGenerator, sentence_words  # noqa: E402

SHARED_FSDD = REPO.parent / "shared" / "data" / "fsdd"
SAMPLE_FSDD = REPO / "tests" / "data" / "fsdd"  # the 400 recordings the tests use (see its SOURCE.txt)
SAMPLE_RATE = 16000
SPLITS = {"train": "train-clean-100", "dev": "dev-clean", "test": "test-clean"}
MARKER = "CORPUS.JSON"
BANDWIDTH = (
    "Bandwidth: FSDD is 8 kHz audio; resampled to 16 kHz it holds nothing above 4 kHz. A model trained on\n"
    "this corpus has never heard the 4-8 kHz band of ordinary 16 kHz speech: resample such input to 8 kHz\n"
    "and back first (sox in.wav -r 8000 - | sox - -r 16000 out.wav), or train on wide-band speech."
)
"""Said in every digits corpus's ``README.TXT`` and printed when one is made."""
DIGIT_WORDS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
FSDD_HELD_OUT = range(0, 5)  # the FSDD's own test recordings: index 0-4 of each digit and speaker

# Utterances per split, and utterances per chapter.
SIZES = {
    "tiny": {"train": 24, "dev": 6, "test": 8},
    "ci": {"train": 400, "dev": 60, "test": 100},
    "large": {"train": 4000, "dev": 400, "test": 600},
}
CHAPTER_SIZE = 50
# espeak: speakers per split.
ESPEAK_SPEAKERS = {
    "tiny": {"train": 2, "dev": 1, "test": 1},
    "ci": {"train": 16, "dev": 4, "test": 4},
    "large": {"train": 60, "dev": 8, "test": 8},
}


@dataclass(frozen=True)
class Item:
    """One utterance to write: split, speaker and chapter IDs, utterance number, words, recipe."""

    split: str
    speaker: int
    chapter: int
    number: int
    words: str
    recipe: dict

    @property
    def id(self) -> str:
        """LibriSpeech utterance ID ``SPK-CHAPTER-NNNN``."""
        return f"{self.speaker}-{self.chapter}-{self.number:04d}"


def speaker_number(name: str, taken: set[int]) -> int:
    """A stable LibriSpeech-style numeric speaker ID for a speaker name (4 digits).

    Example
    -------
    >>> speaker_number("george", set()) == speaker_number("george", set())
    True
    """
    number = zlib.crc32(name.encode()) % 9000 + 1000
    while number in taken:
        number = number + 1 if number < 9999 else 1000
    taken.add(number)
    return number


def _chapters(rng: random.Random, split: str, speaker: int, count: int, taken: set[int]) -> list[int]:
    chapters = []
    for _ in range(max(1, -(-count // CHAPTER_SIZE))):
        while True:
            chapter = rng.randint(100000, 999999)
            if chapter not in taken:
                taken.add(chapter)
                chapters.append(chapter)
                break
    return chapters


def _assign(rng: random.Random, split: str, per_speaker: dict[int, list], taken: set[int]) -> list[Item]:
    """Items with chapters and numbers from ``{speaker: [(words, recipe), ...]}``."""
    items = []
    for speaker, entries in sorted(per_speaker.items()):
        chapters = _chapters(rng, split, speaker, len(entries), taken)
        for k, (words, recipe) in enumerate(entries):
            items.append(Item(split, speaker, chapters[k // CHAPTER_SIZE], k % CHAPTER_SIZE, words, recipe))
    return items


# ---------------------------------------------------------------------------------------------
# Digits from FSDD


def scan_fsdd(folder: str | os.PathLike) -> dict[str, dict[int, dict[int, Path]]]:
    """FSDD recordings as ``{speaker: {digit: {index: path}}}``.

    Arguments
    ---------
    folder : path
        The FSDD folder (holding ``recordings/``) or the recordings folder itself.

    Example
    -------
    >>> fsdd = scan_fsdd(SAMPLE_FSDD)
    >>> sorted(fsdd), len(fsdd["george"][7])
    (['george', 'jackson', 'nicolas', 'theo'], 10)
    """
    root = Path(folder)
    recordings = root / "recordings" if (root / "recordings").is_dir() else root
    if not recordings.is_dir():
        raise SystemExit(
            f"make_librispeech_corpus: FSDD folder {str(folder)!r} not found; pass --fsdd with the folder "
            "holding recordings/{digit}_{speaker}_{index}.wav (from github.com/Jakobovski/"
            "free-spoken-digit-dataset)"
        )
    found: dict[str, dict[int, dict[int, Path]]] = {}
    for path in sorted(recordings.glob("*.wav")):
        match = FSDD_NAME.match(path.stem)
        if match:
            digit, speaker, index = int(match.group(1)), match.group(2), int(match.group(3))
            found.setdefault(speaker, {}).setdefault(digit, {})[index] = path
    if not found:
        raise SystemExit(
            "make_librispeech_corpus: no FSDD recordings ({digit}_{speaker}_{index}.wav) in "
            f"{str(recordings)!r}; pass --fsdd with the FSDD folder"
        )
    return found


def default_fsdd() -> Path:
    """The full FSDD in ``../shared/data/fsdd`` where it is, else the sample in ``tests/data/fsdd``."""
    return SHARED_FSDD if (SHARED_FSDD / "recordings").is_dir() else SAMPLE_FSDD


def plan_digits(
    fsdd: dict[str, dict[int, dict[int, Path]]],
    size: str = "ci",
    seed: int = 0,
    test_speaker: str = "theo",
    dev_speaker: str | None = None,
    min_digits: int = 2,
    max_digits: int = 6,
) -> list[Item]:
    """Connected-digit utterances to make: which recordings, pauses and levels, per split.

    Example
    -------
    >>> fsdd = {s: {d: {i: Path(f"{d}_{s}_{i}.wav") for i in range(10)} for d in range(10)}
    ...         for s in ("ann", "bob", "cy")}
    >>> plan = plan_digits(fsdd, "tiny", test_speaker="cy")
    >>> sorted({(i.split, i.recipe["speaker"]) for i in plan})
    [('dev', 'ann'), ('dev', 'bob'), ('test', 'cy'), ('train', 'ann'), ('train', 'bob')]
    """
    speakers = sorted(fsdd)
    for role, name in (("--test-speaker", test_speaker), ("--dev-speaker", dev_speaker)):
        if name is not None and name not in fsdd:
            raise SystemExit(
                f"make_librispeech_corpus: {role} {name!r} is not in the FSDD folder ({speakers})"
            )
    train = [s for s in speakers if s not in (test_speaker, dev_speaker)]
    if not train or test_speaker == dev_speaker:
        raise SystemExit(
            "make_librispeech_corpus: need at least one training speaker besides the test/dev ones"
        )
    held_out = set(FSDD_HELD_OUT)
    allowed = {  # split -> [(speaker, index filter)]
        "train": [
            (s, (lambda i: i not in held_out) if dev_speaker is None else (lambda i: True)) for s in train
        ],
        "dev": [(s, lambda i: i in held_out) for s in train]
        if dev_speaker is None
        else [(dev_speaker, None)],
        "test": [(test_speaker, None)],
    }
    rng = random.Random(seed)
    taken_speakers: set[int] = set()
    numbers = {s: speaker_number(s, taken_speakers) for s in speakers}
    taken_chapters: set[int] = set()
    items: list[Item] = []
    for split, count in SIZES[size].items():
        per_speaker: dict[int, list] = {}
        for k in range(count):
            speaker, keep = allowed[split][k % len(allowed[split])]
            digits = [rng.randrange(10) for _ in range(rng.randint(min_digits, max_digits))]
            files = []
            for digit in digits:
                choices = sorted(i for i in fsdd[speaker].get(digit, {}) if keep is None or keep(i))
                if not choices:
                    raise SystemExit(f"make_librispeech_corpus: no recordings of digit {digit} by {speaker}")
                files.append(str(fsdd[speaker][digit][rng.choice(choices)]))
            recipe = {
                "speaker": speaker,
                "files": files,
                "pauses_ms": [rng.randint(40, 250) for _ in digits[1:]],
                "edges_ms": [rng.randint(100, 300), rng.randint(100, 300)],
                "level_db": round(rng.uniform(-26.0, -18.0), 2),
            }
            per_speaker.setdefault(numbers[speaker], []).append(
                (" ".join(DIGIT_WORDS[d] for d in digits), recipe)
            )
        items += _assign(rng, split, per_speaker, taken_chapters)
    return items


def _fade(x: np.ndarray, samples: int = 80) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, min(samples, len(x) // 2))
    x = x.copy()
    if len(ramp):
        x[: len(ramp)] *= ramp
        x[len(x) - len(ramp) :] *= ramp[::-1]
    return x


def _noise_floor(x: np.ndarray, frame: int = 320) -> float:
    """RMS of the quietest 20 ms frame."""
    frames = x[: len(x) // frame * frame].reshape(-1, frame) if len(x) >= frame else x[None]
    return float(np.sqrt((frames**2).mean(axis=1)).min())


def render_digits(item: Item, seed: int = 0) -> np.ndarray:
    """The 16 kHz float audio of a connected-digit utterance (see the module docstring)."""
    import soundfile as sf
    import torch

    from snn_asr.dataio import load_audio

    torch.set_num_threads(1)  # tiny resampling jobs: threads only contend

    rng = np.random.default_rng([seed, zlib.crc32(item.id.encode())])
    recipe = item.recipe
    target = 10 ** (recipe["level_db"] / 20)
    pieces, floors = [], []
    for path in recipe["files"]:
        x = load_audio(path, SAMPLE_RATE).numpy().astype(np.float64)
        x -= x.mean()
        rms = np.sqrt((x**2).mean()) or 1.0
        x *= target / rms
        floors.append(_noise_floor(x))
        pieces.append(_fade(x))
    floor = min(max(float(np.median(floors)), 1e-4), 3e-3)

    def silence(ms: int) -> np.ndarray:  # noise made at the recordings' rate and resampled like them
        import torchaudio.functional as F

        rate = sf.info(recipe["files"][0]).samplerate
        white = torch.from_numpy(rng.normal(0.0, floor * 0.7, size=int(ms * rate / 1000)))
        return F.resample(white, rate, SAMPLE_RATE).numpy() if rate != SAMPLE_RATE else white.numpy()

    out = [silence(recipe["edges_ms"][0])]
    for k, piece in enumerate(pieces):
        if k:
            out.append(silence(recipe["pauses_ms"][k - 1]))
        out.append(piece)
    out.append(silence(recipe["edges_ms"][1]))
    return np.clip(np.concatenate(out), -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# espeak-ng sentences


def plan_espeak(size: str = "ci", seed: int = 0) -> list[Item]:
    """espeak-ng sentence utterances: disjoint train/dev/test voices, no repeated sentence.

    Example
    -------
    >>> plan = plan_espeak("tiny", seed=0)
    >>> len(plan), plan[0].words.isupper()
    (38, True)
    """
    rng = random.Random(seed)
    voices = [
        (accent, variant)
        for accent in mmt.DIALECT_VOICES.values()
        for v in mmt.VARIANTS.values()
        for variant in v
    ]
    rng.shuffle(voices)
    generator = SentenceGenerator(rng)
    used: set[str] = set()
    taken_speakers: set[int] = set()
    taken_chapters: set[int] = set()
    items: list[Item] = []
    cursor = 0
    for split, n_speakers in ESPEAK_SPEAKERS[size].items():
        per_speaker: dict[int, list] = {}
        count = SIZES[size][split]
        for s in range(n_speakers):
            accent, variant = voices[cursor % len(voices)]
            cursor += 1
            voice = {
                "voice": f"{accent}+{variant}",
                "rate": rng.randint(145, 190),
                "pitch": rng.randint(30, 70),
            }
            number = speaker_number(f"espeak-{accent}-{variant}-{cursor}", taken_speakers)
            entries = []
            for _ in range(count // n_speakers + (s < count % n_speakers)):
                text = generator.sentence()
                while text in used:
                    text = generator.sentence()
                used.add(text)
                words = " ".join(sentence_words(text)).upper()
                entries.append((words, {"speaker": voice["voice"], "text": text, **voice}))
            per_speaker[number] = entries
        items += _assign(rng, split, per_speaker, taken_chapters)
    return items


def render_espeak(item: Item, seed: int = 0) -> np.ndarray:
    """The 16 kHz float audio of an espeak-ng sentence."""
    rng = np.random.default_rng([seed, zlib.crc32(item.id.encode())])
    recipe = item.recipe
    synthesis = synthesize(recipe["voice"], recipe["text"], recipe["rate"], recipe["pitch"])
    audio, _, _ = mmt.speech_to_16k(synthesis, rng, gain=0.7, noise=20.0)
    return audio.astype(np.float64) / 32768.0


# ---------------------------------------------------------------------------------------------
# Writing


def _flac_path(out: Path, item: Item) -> Path:
    return out / SPLITS[item.split] / str(item.speaker) / str(item.chapter) / f"{item.id}.flac"


def _write_item(job: tuple[Path, Item, str, int]) -> tuple[tuple[int, str], float]:
    """Writes one FLAC file; returns (speaker, split) and the duration in seconds."""
    import soundfile as sf

    out, item, kind, seed = job
    audio = render_digits(item, seed) if kind == "digits" else render_espeak(item, seed)
    path = _flac_path(out, item)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return (item.speaker, item.split), len(audio) / SAMPLE_RATE


def write_corpus(
    out: str | os.PathLike,
    items: Sequence[Item],
    kind: str,
    seed: int,
    meta: dict,
    jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Writes the FLAC files, ``trans.txt`` files, ``SPEAKERS.TXT``, ``README.TXT`` and ``CORPUS.JSON``."""
    from tqdm import tqdm

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        ours = (out / MARKER).is_file()
        if not (overwrite and ours):
            why = (
                "pass --overwrite to replace it"
                if ours
                else "it is not a corpus of this tool; choose another"
            )
            raise SystemExit(f"make_librispeech_corpus: output folder {str(out)!r} is not empty; {why}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    job_list = [(out, item, kind, seed) for item in items]
    bar = tqdm(total=len(items), desc=f"{kind} corpus", unit="utt", disable=not progress)
    seconds: dict[tuple[int, str], float] = {}

    def done(result: tuple[tuple[int, str], float]) -> None:
        seconds[result[0]] = seconds.get(result[0], 0.0) + result[1]
        bar.update()

    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for result in pool.imap_unordered(_write_item, job_list, chunksize=8):
                done(result)
    else:
        for job in job_list:
            done(_write_item(job))
    bar.close()
    chapters: dict[Path, list[Item]] = {}
    for item in items:
        chapters.setdefault(_flac_path(out, item).parent, []).append(item)
    for folder, chapter_items in chapters.items():
        lines = "".join(f"{i.id} {i.words}\n" for i in sorted(chapter_items, key=lambda i: i.id))
        (folder / f"{chapter_items[0].speaker}-{chapter_items[0].chapter}.trans.txt").write_text(lines)
    names = {item.speaker: item.recipe["speaker"] for item in items}
    rows = [
        "; Speakers of this corpus (LibriSpeech's SPEAKERS.TXT format; SEX is not known: '-')",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ]
    rows += [
        f"{k:<5}| - | {SPLITS[split]:<17}| {secs / 60:<6.2f}| {names[k]}"
        for (k, split), secs in sorted(seconds.items())
    ]
    (out / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
    (out / "README.TXT").write_text(meta["readme"] + "\n")
    meta = {k: v for k, v in meta.items() if k != "readme"} | {"kind": kind, "seed": seed}
    meta["utterances"] = {item.id: item.recipe for item in items}
    (out / MARKER).write_text(json.dumps(meta, indent=1) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python tools/make_librispeech_corpus.py {digits,espeak} OUT [--size ci] ...``."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring for details.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    digits = sub.add_parser("digits", help="connected digits from FSDD recordings (real speech)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    digits.add_argument(
        "--fsdd",
        type=Path,
        default=default_fsdd(),
        help="FSDD folder (holding recordings/): ../shared/data/fsdd, else the sample tests/data/fsdd",
    )
    digits.add_argument("--test-speaker", default="theo", help="FSDD speaker held out for test-clean")
    digits.add_argument(
        "--dev-speaker", default=None, help="FSDD speaker held out for dev-clean (default: recordings 0-4)"
    )
    digits.add_argument("--min-digits", type=int, default=2)
    digits.add_argument("--max-digits", type=int, default=6)
    espeak = sub.add_parser("espeak", help="espeak-ng sentences (about 400-word vocabulary)",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    for p in (digits, espeak):
        p.add_argument("out", type=Path, help="output folder (the LibriSpeech root: pass it as data_folder)")
        p.add_argument("--size", choices=list(SIZES), default="ci", help="utterances: " + ", ".join(
            f"{k} {sum(v.values())}" for k, v in SIZES.items()))  # fmt: skip
        p.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic)")
        p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="parallel processes")
        p.add_argument(
            "--overwrite", action="store_true", help="replace an earlier corpus of this tool in OUT"
        )
        p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.kind == "digits":
        if not 1 <= args.min_digits <= args.max_digits:
            parser.error("need 1 <= --min-digits <= --max-digits")
        if args.fsdd.resolve() == SAMPLE_FSDD:
            sample = f"{SAMPLE_FSDD} holds the tests' 400-recording FSDD sample (10 per digit and speaker)"
            full = (
                "pass --fsdd with the full FSDD (git clone github.com/Jakobovski/free-spoken-digit-dataset)"
            )
            if args.size == "large":
                raise SystemExit(f"make_librispeech_corpus: --size large needs more: {sample}; {full}")
            if not args.quiet:
                print(f"make_librispeech_corpus: {sample}; for more, {full}", file=sys.stderr)
        fsdd = scan_fsdd(args.fsdd)
        items = plan_digits(fsdd, args.size, args.seed, args.test_speaker, args.dev_speaker,
                            args.min_digits, args.max_digits)  # fmt: skip
        readme = (
            "Connected-digit corpus in LibriSpeech's layout, made by tools/make_librispeech_corpus.py from\n"
            "the Free Spoken Digit Dataset (github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0;\n"
            f"this derived corpus is CC BY-SA 4.0 too. Speakers: {', '.join(sorted(fsdd))}; test speaker:\n"
            f"{args.test_speaker}; dev: {args.dev_speaker or 'recordings 0-4 of the training speakers'}.\n"
            f"{BANDWIDTH}"
        )
        meta = {"fsdd": str(args.fsdd), "test_speaker": args.test_speaker, "dev_speaker": args.dev_speaker}
    else:
        items = plan_espeak(args.size, args.seed)
        readme = (
            "espeak-ng sentence corpus in LibriSpeech's layout, made by tools/make_librispeech_corpus.py."
        )
        meta = {}
    meta |= {"generator": "tools/make_librispeech_corpus.py", "size": args.size, "readme": readme}
    out = write_corpus(args.out, items, args.kind, args.seed, meta, args.jobs, args.overwrite, not args.quiet)
    counts = {SPLITS[s]: sum(i.split == s for i in items) for s in SPLITS}
    print(f"{args.kind} corpus ({args.size}, seed {args.seed}) written to {out}: {counts}")
    if args.kind == "digits" and not args.quiet:
        print(BANDWIDTH.replace("\n", " "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
