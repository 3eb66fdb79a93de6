"""TIMIT data preparation: SpeechBrain manifests for train, dev and (core) test.

Reads the real TIMIT layout (LDC93S1), in upper or lower case::

    <data_folder>/TRAIN|TEST/DR1..DR8/<speaker>/<utterance>.WAV|.PHN|.WRD|.TXT

``.WAV`` files are NIST SPHERE (read by libsndfile). The SA1/SA2 calibration sentences
are excluded. Splits, by speaker ID only (never by a substring of the whole path, so a
``data_folder`` named e.g. ``/data/test/TIMIT`` is fine):

- ``train``: every speaker under ``TRAIN`` (462 in TIMIT);
- ``dev``: the standard 50-speaker development set, from ``TEST``;
- ``test``: the 24-speaker core test set, from ``TEST`` (``test_set="full"``: every
  ``TEST`` speaker outside the dev set, 118 in TIMIT).

Phones are folded by the standard tables (Lee & Hon, 1989; as in Kaldi's and
SpeechBrain's TIMIT recipes): 61 -> 48 for training and 48/61 -> 39 for scoring. The
glottal stop ``q`` is deleted, ``h#``/``pau`` become ``sil`` and runs of ``sil`` are merged.

Bad data stops the preparation with a one-line :class:`~snn_asr.dataio.DataError` naming the
file and the fix; nothing is skipped, because TIMIT's splits are fixed lists and a result on a
damaged copy would not be comparable. Errors: a missing or incomplete ``data_folder``; an
utterance missing its ``.WAV``, ``.PHN`` or ``.WRD``; an empty or malformed ``.PHN``/``.WRD``
(or one that is not UTF-8); a phone label outside TIMIT's 61; a ``.WAV`` that is unreadable,
empty (0 bytes or 0 samples), truncated, not mono, or not at ``sample_rate`` (16 kHz): files
are not resampled here, because the recipe reads them as they are; the message gives the
``sox`` command that converts one.

Each manifest row: ``ID`` (``<speaker>_<utterance>``, lower case, e.g. ``fadg0_si1279``),
``duration`` (s), ``wav`` (absolute path), ``spk_id``, ``phn`` (space-separated phones of
``phn_set``) and ``wrd`` (space-separated words).

Example
-------
>>> from timit_prepare import map_to_39, prepare_timit  # doctest: +SKIP
>>> prepare_timit("/data/TIMIT", "results/save")  # doctest: +SKIP
{'train': PosixPath('results/save/train.csv'), 'dev': ..., 'test': ...}
>>> map_to_39("sil hh ax l ow cl k ix n".split())
['sil', 'hh', 'ah', 'l', 'ow', 'sil', 'k', 'ih', 'n']
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from snn_asr.dataio import DataError, audio_info, read_text_lines, require_folder, require_format
from snn_asr.recipes.prepare import check_manifest_format, corpus_options, write_manifests

__all__ = [
    "CORE_TEST_SPEAKERS",
    "DEV_SPEAKERS",
    "MAP_48_TO_39",
    "MAP_61_TO_39",
    "MAP_61_TO_48",
    "PHONES_39",
    "PHONES_48",
    "PHONES_61",
    "map_phones",
    "map_to_39",
    "prepare_timit",
    "read_phn",
    "read_wrd",
]

PREP_VERSION = 1
OPTIONS_FILE = "opt_timit_prepare.json"
MAKE_MINI = "or make a mini corpus with: python tools/make_mini_timit.py data/mini_timit --size ci"

# The 50 speakers of the standard development set (Halberstadt, 1998; Kaldi's conf/dev_spk.list).
DEV_SPEAKERS: frozenset[str] = frozenset(
    """faks0 fdac1 fjem0 mgwt0 mjar0 mmdb1 mmdm2 mpdf0 fcmh0 fkms0 mbdg0 mbwm0 mcsh0 fadg0
    fdms0 fedw0 mgjf0 mglb0 mrtk0 mtaa0 mtdt0 mthc0 mwjg0 fnmr0 frew0 fsem0 mbns0 mmjr0
    mdls0 mdlf0 mdvc0 mers0 fmah0 fdrw0 mrcs0 mrjm4 fcal1 mmwh0 fjsj0 majc0 mjsw0 mreb0
    fgjd0 fjmg0 mroa0 mteb0 mjfc0 mrjr0 fmml0 mrws1""".split()
)
# The 24 speakers of the core test set: 2 men and 1 woman from each dialect region.
CORE_TEST_SPEAKERS: frozenset[str] = frozenset(
    """mdab0 mwbt0 felc0 mtas1 mwew0 fpas0 mjmp0 mlnt0 fpkt0 mlll0 mtls0 fjlm0
    mbpm0 mklt0 fnlp0 mcmj0 mjdh0 fmgd0 mgrt0 mnjm0 fdhc0 mjln0 mpam0 fmld0""".split()
)

# TIMIT's 61 phone labels.
PHONES_61: tuple[str, ...] = tuple(
    """aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl
    h# hh hv ih ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y
    z zh""".split()
)
# 61 -> 48 (Lee & Hon); ``None`` deletes the phone (the glottal stop ``q``).
MAP_61_TO_48: dict[str, str | None] = {p: p for p in PHONES_61} | {
    "ax-h": "ax",
    "axr": "er",
    "bcl": "vcl",
    "dcl": "vcl",
    "gcl": "vcl",
    "pcl": "cl",
    "tcl": "cl",
    "kcl": "cl",
    "em": "m",
    "eng": "ng",
    "nx": "n",
    "hv": "hh",
    "ux": "uw",
    "h#": "sil",
    "pau": "sil",
    "q": None,
}
PHONES_48: tuple[str, ...] = tuple(sorted({p for p in MAP_61_TO_48.values() if p}))
# 48 -> 39 (Lee & Hon): the scoring set.
MAP_48_TO_39: dict[str, str] = {p: p for p in PHONES_48} | {
    "ao": "aa",
    "ax": "ah",
    "el": "l",
    "en": "n",
    "ix": "ih",
    "zh": "sh",
    "cl": "sil",
    "vcl": "sil",
    "epi": "sil",
}
PHONES_39: tuple[str, ...] = tuple(sorted(set(MAP_48_TO_39.values())))
MAP_61_TO_39: dict[str, str | None] = {p: (MAP_48_TO_39[q] if q else None) for p, q in MAP_61_TO_48.items()}
_TO_39: dict[str, str | None] = MAP_61_TO_39 | MAP_48_TO_39  # the two agree where they overlap
_SETS = {61: PHONES_61, 48: PHONES_48, 39: PHONES_39}
_UTTERANCE = re.compile(r"^s[aix]\d+$", re.IGNORECASE)
_DIALECT = re.compile(r"^dr[1-8]$", re.IGNORECASE)


def map_phones(phones: Sequence[str], target: int = 48, merge_sil: bool = True) -> list[str]:
    """Maps a phone sequence (61- or 48-set labels) to the ``target`` set (61, 48 or 39).

    Arguments
    ---------
    phones : sequence of str
        Phone labels; 61-set labels for ``target=48``, 61- or 48-set labels for ``target=39``.
    target : int
        61 (no change), 48 or 39.
    merge_sil : bool
        Merge runs of ``sil`` (e.g. from ``pau h#``, or ``cl`` next to ``sil`` in the 39 set).

    Returns
    -------
    list of str
        The mapped sequence; ``q`` is deleted for 48 and 39.

    Raises
    ------
    KeyError
        A label that is not in the source set.

    Example
    -------
    >>> map_phones("h# dh ax q aa r pau h#".split(), 48)
    ['sil', 'dh', 'ax', 'aa', 'r', 'sil']
    >>> map_phones("sil dh ax cl t zh sil".split(), 39)
    ['sil', 'dh', 'ah', 'sil', 't', 'sh', 'sil']
    """
    if target == 61:
        return list(phones)
    table = {48: MAP_61_TO_48, 39: _TO_39}[target]
    out: list[str] = []
    for phone in phones:
        mapped = table[phone]
        if mapped is None or (merge_sil and mapped == "sil" and out and out[-1] == "sil"):
            continue
        out.append(mapped)
    return out


def map_to_39(phones: Sequence[str]) -> list[str]:
    """Folds 48-set (or 61-set) phones to the 39-phone scoring set, merging ``sil`` runs.

    Example
    -------
    >>> map_to_39(["sil", "vcl", "b", "ao", "cl", "sil"])
    ['sil', 'b', 'aa', 'sil']
    """
    return map_phones(phones, 39)


def _split_timed_line(path: Path, number: int, line: str, what: str) -> tuple[int, int, str]:
    fields = line.split()
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        raise DataError(
            f"{str(path)!r} line {number}: expected 'start end {what}', got {line.strip()!r}; "
            "fix the line or restore the file from the original corpus."
        )
    return int(fields[0]), int(fields[1]), fields[2]


def read_phn(path: str | os.PathLike) -> list[tuple[int, int, str]]:
    """Reads a TIMIT ``.PHN`` file as ``(start, end, phone)`` tuples (sample indices, 61-set phones).

    Raises a one-line :class:`~snn_asr.dataio.DataError` naming the file for an empty file,
    a malformed line or a label outside TIMIT's 61 phones.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "SX1.PHN"
    >>> _ = path.write_text("0 2000 h#\\n2000 3000 sh\\n3000 5000 h#\\n")
    >>> read_phn(path)
    [(0, 2000, 'h#'), (2000, 3000, 'sh'), (3000, 5000, 'h#')]
    """
    path = Path(path)
    segments = []
    for number, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        start, end, phone = _split_timed_line(path, number, line, "phone")
        phone = phone.lower()
        if phone not in MAP_61_TO_48:
            raise DataError(
                f"{str(path)!r} line {number}: unknown phone label {phone!r} (not one of TIMIT's 61 phones); "
                "fix the label or restore the file from the original corpus."
            )
        segments.append((start, end, phone))
    if not segments:
        raise DataError(
            f"{str(path)!r} is empty (no phone segments); restore it from the original corpus, or delete "
            "the utterance's .WAV/.PHN/.WRD/.TXT files."
        )
    return segments


def read_wrd(path: str | os.PathLike) -> list[tuple[int, int, str]]:
    """Reads a TIMIT ``.WRD`` file as ``(start, end, word)`` tuples.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "SX1.WRD"
    >>> _ = path.write_text("2000 3000 she\\n")
    >>> read_wrd(path)
    [(2000, 3000, 'she')]
    """
    path = Path(path)
    words = [
        _split_timed_line(path, number, line, "word")
        for number, line in enumerate(read_text_lines(path), start=1)
        if line.strip()
    ]
    if not words:
        raise DataError(
            f"{str(path)!r} is empty (no words); restore it from the original corpus, or delete "
            "the utterance's .WAV/.PHN/.WRD/.TXT files."
        )
    return words


def _children(folder: Path) -> dict[str, Path]:
    """Entries of ``folder`` by lower-case name."""
    return {entry.name.lower(): entry for entry in sorted(folder.iterdir())}


def _find_layout(data_folder: str | os.PathLike, uppercase: bool | None) -> dict[str, Path]:
    """The ``train`` and ``test`` folders of a TIMIT copy (any case), checked."""
    fix = f"pass the TIMIT folder that holds TRAIN/ and TEST/ (LDC93S1), {MAKE_MINI}"
    folder = require_folder(data_folder, "TIMIT data_folder", fix)
    found = {name: path for name, path in _children(folder).items() if name in ("train", "test")}
    for name in ("train", "test"):
        if name not in found or not found[name].is_dir():
            raise DataError(
                f"TIMIT data_folder {str(data_folder)!r} has no {name.upper()}/ (or {name}/) folder; {fix}."
            )
    if uppercase is not None:
        for name, path in found.items():
            if (path.name == name.upper()) != uppercase:
                raise DataError(
                    f"TIMIT data_folder {str(data_folder)!r} has {path.name}/ but uppercase={uppercase}; "
                    "pass uppercase=None to accept either case."
                )
    return found


def _utterances(split_folder: Path, keep: Callable[[str], bool]) -> list[dict[str, Path | str]]:
    """Utterances (without SA1/SA2) of the speakers ``keep`` accepts, under ``TRAIN`` or ``TEST``."""
    found = []
    for dialect_name, dialect in _children(split_folder).items():
        if not (dialect.is_dir() and _DIALECT.match(dialect_name)):
            continue
        for speaker_name, speaker in _children(dialect).items():
            if not speaker.is_dir() or not keep(speaker_name):
                continue
            files: dict[str, dict[str, Path]] = {}
            for entry in speaker.iterdir():
                stem, _, ext = entry.name.lower().partition(".")
                if _UTTERANCE.match(stem) and ext in ("wav", "phn", "wrd", "txt") and entry.is_file():
                    files.setdefault(stem, {})[ext] = entry
            for stem in sorted(files):
                if stem.startswith("sa"):
                    continue
                kinds = files[stem]
                present = next(iter(kinds.values()))
                for ext in ("wav", "phn", "wrd"):
                    if ext not in kinds:
                        upper = present.name.isupper()
                        expected = present.with_name(f"{stem}.{ext}".upper() if upper else f"{stem}.{ext}")
                        raise DataError(
                            f"{str(expected)!r} is missing; restore it from the original corpus, or delete "
                            f"the other files of utterance {stem} in {str(speaker)!r}."
                        )
                found.append({"speaker": speaker_name, "utterance": stem, "dialect": dialect_name, **kinds})
    return found


def _row(utt: dict, phn_set: int, sample_rate: int | None) -> dict[str, object]:
    info = require_format(audio_info(utt["wav"]), sample_rate)
    phones = [phone for _, _, phone in read_phn(utt["phn"])]
    words = [word for _, _, word in read_wrd(utt["wrd"])]
    return {
        "ID": f"{utt['speaker']}_{utt['utterance']}",
        "duration": info.duration,
        "wav": str(Path(utt["wav"]).resolve()),
        "spk_id": utt["speaker"],
        "phn": " ".join(map_phones(phones, phn_set)),
        "wrd": " ".join(words),
    }


def prepare_timit(
    data_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    splits: Sequence[str] = ("train", "dev", "test"),
    phn_set: int = 48,
    uppercase: bool | None = None,
    test_set: str = "core",
    manifest_format: str = "csv",
    skip_prep: bool = False,
    sample_rate: int | None = 16000,
) -> dict[str, Path]:
    """Writes ``<save_folder>/{train,dev,test}.csv`` (or ``.json``) manifests for TIMIT.

    Skipped when the manifests exist and ``<save_folder>/opt_timit_prepare.json`` holds the
    same options (including the data folder and its modification stamp); otherwise redone.

    Arguments
    ---------
    data_folder : path
        TIMIT root, holding ``TRAIN/`` and ``TEST/`` (any case).
    save_folder : path
        Where the manifests and the options file go (created if needed).
    splits : sequence of str
        Any of ``"train"``, ``"dev"``, ``"test"``.
    phn_set : int
        Phone set of the ``phn`` column: 48 (training, default), 39 or 61.
    uppercase : bool or None
        ``None`` accepts either case; ``True``/``False`` insists on upper/lower-case
        ``TRAIN``/``TEST`` folder names.
    test_set : str
        ``"core"`` (24 speakers, default) or ``"full"`` (all ``TEST`` speakers outside dev).
    manifest_format : str
        ``"csv"`` or ``"json"``.
    skip_prep : bool
        If True, do nothing (and only return the manifest paths).
    sample_rate : int or None
        The rate every ``.WAV`` must have (TIMIT's 16000 Hz); ``None`` accepts any. Files are
        never resampled here: another rate is an error (see the module docstring).

    Returns
    -------
    dict
        Split name -> manifest path.

    Raises
    ------
    DataError
        Missing or wrong data folder, missing/empty/malformed ``.PHN``/``.WRD``, unknown phone
        label, no speakers of a split; :class:`~snn_asr.dataio.AudioError` for a bad ``.WAV``
        (unreadable, empty, truncated, not ``sample_rate`` Hz, not mono). Each a one-line
        message naming the path and the fix.
    """
    if phn_set not in _SETS:
        raise ValueError(f"phn_set must be 61, 48 or 39, got {phn_set!r}")
    if test_set not in ("core", "full"):
        raise ValueError(f"test_set must be 'core' or 'full', got {test_set!r}")
    check_manifest_format(manifest_format)
    unknown = set(splits) - {"train", "dev", "test"}
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; choose from train, dev, test")
    save = Path(save_folder)
    outputs = {split: save / f"{split}.{manifest_format}" for split in splits}
    if skip_prep:
        return outputs

    layout = _find_layout(data_folder, uppercase)
    options = corpus_options(
        PREP_VERSION,
        data_folder,
        [layout["train"], layout["test"]],
        splits=list(splits),
        phn_set=phn_set,
        test_set=test_set,
        manifest_format=manifest_format,
        sample_rate=sample_rate,
    )
    selection: dict[str, tuple[str, Callable[[str], bool]]] = {
        "train": ("train", lambda speaker: True),
        "dev": ("test", DEV_SPEAKERS.__contains__),
        "test": (
            "test",
            CORE_TEST_SPEAKERS.__contains__ if test_set == "core" else lambda s: s not in DEV_SPEAKERS,
        ),
    }
    expected = {"train": "462 speakers", "dev": "the standard 50 speakers", "test": "the 24 core speakers"}

    def split_rows(split: str) -> list[dict[str, object]]:
        folder_name, keep = selection[split]
        utterances = _utterances(layout[folder_name], keep)
        if not utterances:
            raise DataError(
                f"No {split} utterances (TIMIT has {expected[split]}) under {str(layout[folder_name])!r}; "
                f"pass a complete TIMIT copy, {MAKE_MINI}."
            )
        return sorted((_row(utt, phn_set, sample_rate) for utt in utterances), key=lambda row: row["ID"])

    return write_manifests("TIMIT", outputs, save / OPTIONS_FILE, options, split_rows)


if __name__ == "__main__":
    from snn_asr.recipes.prepare import prepare_command

    sys.exit(prepare_command(prepare_timit))
