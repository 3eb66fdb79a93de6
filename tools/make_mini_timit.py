#!/usr/bin/env python3
"""Synthesizes a mini TIMIT with espeak-ng, in exactly TIMIT's layout.

::

    OUT/TRAIN|TEST/DR1..DR8/<speaker>/<utterance>.WAV|.PHN|.WRD|.TXT   (--lowercase: lower case)
    OUT/DOC/MINI_TIMIT.JSON                                          (how each file was made)

- ``.WAV``: NIST SPHERE (``NIST_1A``), 16 kHz, 16-bit PCM: espeak-ng's 22.05 kHz speech,
  padded with 80-250 ms of silence at each end, resampled to 16 kHz, with a faint noise floor.
- ``.PHN``: TIMIT 61-set phones with sample times. espeak-ng reports each phoneme it
  synthesizes, with its start sample in the audio (phoneme events of libespeak-ng); each
  phoneme's IPA name is mapped to TIMIT labels (:data:`IPA_TO_TIMIT`) and given the time
  until the next phoneme. So labels are what was spoken (the sequence equals the mapping
  of ``espeak-ng --ipa`` for the text), and times are exact up to how the mapping splits
  a phoneme: stops get a closure (``bcl b``, ``tcl t``, ...; the closure is the first
  55-70 % of espeak's stop), affricates ``tcl ch``/``dcl jh``, a phoneme mapped to two
  phones (``ɑːɹ`` -> ``aa r``) is split 65/35, and a phoneme espeak gives no time of its
  own (a coda ``l`` blended into the vowel) takes the last third of the previous phone.
  Silence at the ends is ``h#``, pauses inside are ``pau``. Never produced: ``ax-h em eng
  epi hv nx ux`` (espeak-ng has no such phones).
- ``.WRD``: words with the times of their phones; ``.TXT``: ``0 <samples> <sentence>``.
- Dialect regions DR1-DR8 are espeak-ng's eight English accents (:data:`DIALECT_VOICES`);
  speakers are voice variants (``+m1``..``+m7``, ``+f1``..``+f5``) with their own pitch and rate.
  Speaker IDs follow TIMIT (``f``/``m`` + initials + digit); the dev and core-test speakers
  carry the real standard IDs, so ``recipes/TIMIT/timit_prepare.py`` splits them as in TIMIT.
- Each speaker reads SA1, SA2 (TIMIT's two calibration sentences), 3 SI and 5 SX sentences;
  SX sentences are shared by up to 7 speakers, train and test sentences do not overlap.
  Sentences come from a small built-in grammar (about 400 words).

Deterministic given ``--seed`` (each synthesis runs in a fresh fork, since libespeak-ng keeps
state between calls). Sizes (10 utterances per speaker, 8 of them used by the recipe):
``tiny`` (4 speakers, for tests), ``ci`` (40 speakers: 24 train, 8 dev, 8 core test; 400
utterances, about 30 s on 2 cores), ``medium`` (170 speakers: 96 train, all 50 dev and 24
core test) and ``large`` (TIMIT's own 630 speakers: 462 train, 50 dev, 24 core test and 94
other test speakers; 6300 utterances, about 8 min on 2 cores).

Example::

    python tools/make_mini_timit.py data/mini_timit --size ci
    python recipes/TIMIT/train.py recipes/TIMIT/hparams/snn.yaml --data_folder data/mini_timit
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import shutil
import sys
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from espeak_synthesis import ESPEAK_RATE, Synthesis, synthesize  # noqa: E402
from sentence_grammar import SentenceGenerator  # noqa: E402
from timit_labels import timit_segments, word_segments  # noqa: E402

SAMPLE_RATE = 16000
MARKER = "MINI_TIMIT.JSON"

SA_SENTENCES = {
    "sa1": "She had your dark suit in greasy wash water all year.",
    "sa2": "Don't ask me to carry an oily rag like that.",
}

# Dialect region -> espeak-ng English accent (its voice name).
DIALECT_VOICES: dict[str, str] = {
    "dr1": "en-gb-x-rp",
    "dr2": "en-us",
    "dr3": "en-gb-x-gbcwmd",
    "dr4": "en-gb-x-gbclan",
    "dr5": "en-029",
    "dr6": "en-us-nyc",
    "dr7": "en",
    "dr8": "en-gb-scotland",
}
VARIANTS = {"m": ["m1", "m2", "m3", "m4", "m5", "m6", "m7"], "f": ["f1", "f2", "f3", "f4", "f5"]}

# The standard dev (50) and core test (24) speakers of TIMIT, by dialect region.
DEV_BY_DIALECT: dict[str, list[str]] = {
    "dr1": "faks0 fdac1 fjem0 mjsw0 mreb0".split(),
    "dr2": "mgwt0 mjar0 mmdb1 mmdm2 mpdf0".split(),
    "dr3": "fcmh0 fkms0 mbdg0 mbwm0 mcsh0 mglb0 mgjf0 mmjr0 mmwh0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0".split(),
    "dr4": "fadg0 fdms0 fedw0 fgjd0 fjmg0 fnmr0 frew0 fsem0 mbns0 mdls0 mroa0 mteb0".split(),
    "dr5": "fcal1 fmah0 mrws1".split(),
    "dr6": "fdrw0 mjfc0 mrjr0".split(),
    "dr7": "fmml0 mdlf0 mdvc0 mers0 mrcs0 mrjm4".split(),
    "dr8": "fjsj0 majc0".split(),
}
CORE_BY_DIALECT: dict[str, list[str]] = {
    "dr1": "felc0 mdab0 mwbt0".split(),
    "dr2": "fpas0 mtas1 mwew0".split(),
    "dr3": "fpkt0 mjmp0 mlnt0".split(),
    "dr4": "fjlm0 mlll0 mtls0".split(),
    "dr5": "fnlp0 mbpm0 mklt0".split(),
    "dr6": "fmgd0 mcmj0 mjdh0".split(),
    "dr7": "fdhc0 mgrt0 mnjm0".split(),
    "dr8": "fmld0 mjln0 mpam0".split(),
}
# TIMIT's speakers per dialect region: training set, and test set (dev + core + others).
TIMIT_TRAIN = {"dr1": 38, "dr2": 76, "dr3": 76, "dr4": 68, "dr5": 70, "dr6": 35, "dr7": 77, "dr8": 22}
TIMIT_TEST = {"dr1": 11, "dr2": 26, "dr3": 26, "dr4": 32, "dr5": 28, "dr6": 11, "dr7": 23, "dr8": 11}


@dataclass(frozen=True)
class Size:
    """Speakers per dialect region: training, dev, core test and other test speakers."""

    train: dict[str, int]
    dev: dict[str, int]
    core: dict[str, int]
    other_test: dict[str, int]


def _per_dialect(count: int | dict[str, int]) -> dict[str, int]:
    return {d: count.get(d, 0) if isinstance(count, dict) else count for d in DIALECT_VOICES}


_ALL_DEV = {d: len(s) for d, s in DEV_BY_DIALECT.items()}
_ALL_CORE = {d: len(s) for d, s in CORE_BY_DIALECT.items()}
SIZES: dict[str, Size] = {
    # 4 speakers, 40 files: for tests
    "tiny": Size(_per_dialect({"dr2": 1, "dr5": 1}), _per_dialect({"dr1": 1}), _per_dialect({"dr6": 1}),
                 _per_dialect(0)),
    # 40 speakers (24 train, 8 dev, 8 core test), 400 files: trains in minutes
    "ci": Size(_per_dialect(3), _per_dialect(1), _per_dialect(1), _per_dialect(0)),
    # 170 speakers (96 train, all 50 dev and 24 core test)
    "medium": Size(_per_dialect(12), _ALL_DEV, _ALL_CORE, _per_dialect(0)),
    # TIMIT's own 630 speakers per dialect region
    "large": Size(
        dict(TIMIT_TRAIN),
        _ALL_DEV,
        _ALL_CORE,
        {d: TIMIT_TEST[d] - _ALL_DEV[d] - _ALL_CORE[d] for d in DIALECT_VOICES},
    ),
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Corpus plan


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: TIMIT ID, split folder, dialect region and espeak voice settings."""

    id: str
    split: str  # "train" or "test"
    dialect: str
    voice: str
    rate: int
    pitch: int
    gain: float


@dataclass(frozen=True)
class Utterance:
    """One file set to make: speaker, utterance ID (e.g. ``sx123``) and text."""

    speaker: Speaker
    id: str
    text: str


def _new_speaker_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        sex = "m" if rng.random() < 0.7 else "f"
        name = sex + "".join(rng.choice("abcdefghijklmnoprstvwy") for _ in range(3)) + "0"
        if name not in taken:
            taken.add(name)
            return name


def _make_speaker(rng: random.Random, speaker_id: str, split: str, dialect: str) -> Speaker:
    sex = speaker_id[0]
    variant = rng.choice(VARIANTS[sex])
    return Speaker(
        id=speaker_id,
        split=split,
        dialect=dialect,
        voice=f"{DIALECT_VOICES[dialect]}+{variant}",
        rate=rng.randint(145, 190),
        pitch=rng.randint(30, 70),
        gain=round(rng.uniform(0.45, 0.95), 3),
    )


def plan_corpus(size: str = "ci", seed: int = 0) -> list[Utterance]:
    """Speakers and sentences of a mini TIMIT, deterministic given ``size`` and ``seed``.

    Returns
    -------
    list of Utterance
        Ten per speaker (SA1, SA2, 3 SI, 5 SX), speakers ordered by split, region and ID.

    Example
    -------
    >>> plan = plan_corpus("ci", seed=0)
    >>> len(plan), len({u.speaker.id for u in plan})
    (400, 40)
    >>> plan == plan_corpus("ci", seed=0)
    True
    """
    spec = SIZES[size]
    rng = random.Random(seed)
    taken = {s for group in (DEV_BY_DIALECT, CORE_BY_DIALECT) for d in group.values() for s in d}
    speakers: list[Speaker] = []
    for dialect in DIALECT_VOICES:
        dev = rng.sample(DEV_BY_DIALECT[dialect], spec.dev[dialect])
        core = rng.sample(CORE_BY_DIALECT[dialect], spec.core[dialect])
        train = [_new_speaker_id(rng, taken) for _ in range(spec.train[dialect])]
        other = [_new_speaker_id(rng, taken) for _ in range(spec.other_test[dialect])]
        speakers += [_make_speaker(rng, s, "train", dialect) for s in sorted(train)]
        speakers += [_make_speaker(rng, s, "test", dialect) for s in sorted(dev + core + other)]
    speakers.sort(key=lambda s: (s.split != "train", s.dialect, s.id))

    generator = SentenceGenerator(rng)
    used: set[str] = set(SA_SENTENCES.values())

    def fresh() -> str:
        while True:
            text = generator.sentence()
            if text not in used:
                used.add(text)
                return text

    utterances: list[Utterance] = []
    sx_number, si_number = 3, 453
    for split in ("train", "test"):
        group = [s for s in speakers if s.split == split]
        pool = [(sx_number + k, fresh()) for k in range(max(5, math.ceil(len(group) * 5 / 7)))]
        sx_number += len(pool)
        order = list(range(len(pool)))
        rng.shuffle(order)
        cursor = 0
        for speaker in group:
            chosen: list[int] = []
            while len(chosen) < 5:  # each SX sentence read by about 7 speakers
                k = order[cursor % len(order)]
                cursor += 1
                if k not in chosen:
                    chosen.append(k)
            utterances += [Utterance(speaker, name, text) for name, text in SA_SENTENCES.items()]
            for _ in range(3):
                utterances.append(Utterance(speaker, f"si{si_number}", fresh()))
                si_number += 1
            utterances += [Utterance(speaker, f"sx{pool[k][0]}", pool[k][1]) for k in sorted(chosen)]
    return utterances


# ---------------------------------------------------------------------------------------------
# Files


def speech_to_16k(
    synthesis: Synthesis, rng: np.random.Generator, gain: float = 0.7, noise: float = 20.0
) -> tuple[np.ndarray, int, int]:
    """Pads espeak-ng audio with 80-250 ms of silence at each end, resamples it to 16 kHz and
    adds a noise floor.

    Returns
    -------
    tuple
        (samples,) int16 audio at 16 kHz; the silence added before it and the padded
        length, both in 22.05 kHz samples (for :func:`timit_segments`).
    """
    from scipy.signal import resample_poly

    lead, trail = (int(rng.integers(int(0.08 * ESPEAK_RATE), int(0.25 * ESPEAK_RATE))) for _ in range(2))
    audio = np.concatenate([np.zeros(lead), synthesis.audio.astype(np.float64), np.zeros(trail)])
    total = len(audio)
    audio = resample_poly(audio, SAMPLE_RATE // 50, ESPEAK_RATE // 50) * gain  # 320 / 441
    audio = audio + rng.normal(0.0, noise, size=len(audio))
    return np.clip(np.round(audio), -32768, 32767).astype(np.int16), lead, total


def render_utterance(utt: Utterance, seed: int = 0, noise: float = 20.0) -> dict:
    """Synthesizes one utterance: 16 kHz int16 audio and the ``.PHN``/``.WRD``/``.TXT`` texts.

    Returns
    -------
    dict
        ``audio`` (samples,) int16 at 16 kHz, ``phn``, ``wrd``, ``txt`` (file contents).
    """
    rng = np.random.default_rng([seed, zlib.crc32(f"{utt.speaker.id}/{utt.id}".encode())])
    synthesis = synthesize(utt.speaker.voice, utt.text, utt.speaker.rate, utt.speaker.pitch)
    audio16, lead, total = speech_to_16k(synthesis, rng, utt.speaker.gain, noise)
    phones = timit_segments(synthesis, lead, total)
    words = word_segments(synthesis, utt.text, phones, lead)
    n = len(audio16)

    def to16(t: int) -> int:
        return n if t >= total else min(n, round(t * SAMPLE_RATE / ESPEAK_RATE))

    def lines(segments: list[tuple[int, int, str]]) -> str:
        out = [(to16(a), to16(b), p) for a, b, p in segments]
        return "".join(f"{a} {b} {p}\n" for a, b, p in out if b > a)

    return {"audio": audio16, "phn": lines(phones), "wrd": lines(words), "txt": f"0 {n} {utt.text}\n"}


def _paths(out: Path, utt: Utterance, lowercase: bool) -> dict[str, Path]:
    def case(name: str) -> str:
        return name.lower() if lowercase else name.upper()

    folder = out / case(utt.speaker.split) / case(utt.speaker.dialect) / case(utt.speaker.id)
    return {ext: folder / case(f"{utt.id}.{ext}") for ext in ("wav", "phn", "wrd", "txt")}


def _write_utterance(job: tuple[Path, Utterance, bool, int, float]) -> str:
    import soundfile as sf

    out, utt, lowercase, seed, noise = job
    files = render_utterance(utt, seed, noise)
    paths = _paths(out, utt, lowercase)
    paths["wav"].parent.mkdir(parents=True, exist_ok=True)
    sf.write(paths["wav"], files["audio"], SAMPLE_RATE, format="NIST", subtype="PCM_16")
    for ext in ("phn", "wrd", "txt"):
        paths[ext].write_text(files[ext], encoding="ascii")
    return str(paths["wav"])


def make_mini_timit(
    out: str | os.PathLike,
    size: str = "ci",
    seed: int = 0,
    lowercase: bool = False,
    jobs: int = 1,
    noise: float = 20.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Writes a mini TIMIT to ``out`` (see the module docstring); returns ``out``.

    Arguments
    ---------
    out : path
        Output folder; must be empty or absent (``overwrite=True`` replaces an earlier mini TIMIT).
    size : str
        ``"tiny"``, ``"ci"``, ``"medium"`` or ``"large"`` (:data:`SIZES`).
    seed : int
        Everything (speakers, sentences, padding, noise) follows from it.
    lowercase : bool
        Lower-case folder and file names (``train/dr1/fxyz0/sx3.wav``).
    jobs : int
        Parallel processes.
    noise : float
        Standard deviation of the added noise floor, in 16-bit units.
    overwrite : bool
        Replace ``out`` if it holds an earlier mini TIMIT.
    progress : bool
        Show a progress bar.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        marker = next((p for p in (out / "DOC" / MARKER, out / "doc" / MARKER.lower()) if p.is_file()), None)
        if not overwrite or marker is None:
            why = (
                "pass --overwrite to replace it"
                if marker
                else "it is not a mini TIMIT; choose another folder"
            )
            raise SystemExit(f"make_mini_timit: output folder {str(out)!r} is not empty; {why}")
        shutil.rmtree(out)
    plan = plan_corpus(size, seed)
    jobs_list = [(out, utt, lowercase, seed, noise) for utt in plan]
    from tqdm import tqdm

    bar = tqdm(total=len(plan), desc=f"mini TIMIT ({size})", unit="utt", disable=not progress)
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for _ in pool.imap_unordered(_write_utterance, jobs_list, chunksize=4):
                bar.update()
    else:
        for job in jobs_list:
            _write_utterance(job)
            bar.update()
    bar.close()
    speakers = {u.speaker.id: u.speaker for u in plan}
    doc = out / ("doc" if lowercase else "DOC")
    doc.mkdir(parents=True, exist_ok=True)
    meta = {
        "generator": "tools/make_mini_timit.py",
        "size": size,
        "seed": seed,
        "noise": noise,
        "sample_rate": SAMPLE_RATE,
        "phn_times": "espeak-ng phoneme events (start samples), mapped IPA->TIMIT; stops split into "
        "closure + release, two-phone phonemes split 65/35; see tools/make_mini_timit.py",
        "dialect_voices": DIALECT_VOICES,
        "speakers": {
            k: {f: v for f, v in asdict(s).items() if f != "id"} for k, s in sorted(speakers.items())
        },
        "utterances": {f"{u.speaker.id}/{u.id}": u.text for u in plan},
    }
    (doc / (MARKER.lower() if lowercase else MARKER)).write_text(json.dumps(meta, indent=1) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python tools/make_mini_timit.py OUT [--size ci] [--seed 0] ...``."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="See the module docstring for details.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )  # fmt: skip
    parser.add_argument("out", type=Path, help="output folder (the TIMIT root: TRAIN/, TEST/, DOC/)")
    parser.add_argument(
        "--size",
        choices=list(SIZES),
        default="ci",
        help="tiny: 4 speakers (tests); ci: 40 speakers, 400 utterances (~30 s on 2 cores); medium: 170 "
        "speakers; large: TIMIT's 630 speakers, 6300 utterances (~8 min)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic)")
    parser.add_argument("--lowercase", action="store_true", help="lower-case file and folder names")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="parallel processes")
    parser.add_argument("--noise", type=float, default=20.0, help="noise floor std, 16-bit units")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier mini TIMIT in OUT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    out = make_mini_timit(
        args.out, args.size, args.seed, args.lowercase, args.jobs, args.noise, args.overwrite, not args.quiet
    )
    print(f"mini TIMIT ({args.size}, seed {args.seed}) written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
