"""LibriSpeech data preparation: a SpeechBrain manifest per split.

Reads the real LibriSpeech layout (https://www.openslr.org/12)::

    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utterance>.flac
    <data_folder>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

where each ``trans.txt`` line is ``<speaker>-<chapter>-<utterance> WORDS IN UPPER CASE``.
Writes ``<save_folder>/<split>.csv`` (or ``.json``) with the columns ``ID`` (e.g.
``1089-134686-0000``), ``duration`` (s), ``wav`` (absolute path of the ``.flac``),
``spk_id`` (the speaker) and ``wrd`` (the transcript), plus ``train.csv`` (all training
splits, e.g. ``train-clean-100`` and ``train-clean-360``) and ``dev.csv`` (all dev splits).

The ``trans.txt`` files are the index of the corpus. Whatever they promise must be there and
usable, else the preparation stops with a one-line :class:`~snn_asr.dataio.DataError` naming
the file and the fix: a missing data or split folder; a chapter with ``.flac`` files but no
``trans.txt``; a zero-length or non-UTF-8 ``trans.txt``; a malformed or duplicate line; a
transcript line whose ``.flac`` is missing; a ``.flac`` that is unreadable, empty (0 bytes or
0 samples), truncated, not mono or not at ``sample_rate`` (16 kHz). Files are not resampled:
the recipe reads them as they are, so the message gives the ``sox`` command that converts one.

A ``.flac`` that no transcript line names carries no label: it is skipped, with one warning
per split that counts such files and names the first (add its line, or delete it).

Example
-------
>>> from librispeech_prepare import prepare_librispeech  # doctest: +SKIP
>>> prepare_librispeech("/data/LibriSpeech", "results/save", tr_splits=["train-clean-100"],
...                     dev_splits=["dev-clean"], te_splits=["test-clean"])  # doctest: +SKIP
{'train-clean-100': PosixPath('results/save/train-clean-100.csv'), ...}
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from snn_asr.dataio import DataError, audio_info, read_text_lines, require_folder, require_format
from snn_asr.recipes.prepare import check_manifest_format, corpus_options, write_manifests

logger = logging.getLogger(__name__)

__all__ = ["prepare_librispeech", "read_chapter"]

PREP_VERSION = 1
OPTIONS_FILE = "opt_librispeech_prepare.json"
GET_DATA = (
    "download it from https://www.openslr.org/12, or make a small corpus with: "
    "python tools/make_librispeech_corpus.py digits data/digits"
)
_LINE = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def read_chapter(
    chapter: str | os.PathLike, sample_rate: int | None = 16000, unlabeled: list[Path] | None = None
) -> list[dict[str, object]]:
    """Checks one chapter folder and returns its utterances as manifest rows.

    Arguments
    ---------
    chapter : path
        ``<split>/<speaker>/<chapter>`` holding ``<speaker>-<chapter>.trans.txt`` and the ``.flac`` files.
    sample_rate : int or None
        The rate every ``.flac`` must have; ``None`` accepts any.
    unlabeled : list, optional
        ``.flac`` files without a transcript line are skipped and appended here; without
        the list, a warning names them.

    Returns
    -------
    list of dict
        ``ID``, ``duration``, ``wav``, ``spk_id``, ``wrd`` per utterance, in transcript order.

    Raises
    ------
    DataError
        A one-line message naming the file: missing, zero-length or non-UTF-8 transcript,
        malformed or duplicate line, transcript line without audio;
        :class:`~snn_asr.dataio.AudioError` for an unusable ``.flac``.

    Example
    -------
    >>> rows = read_chapter("/work/shared/data/librispeech-samples/LibriSpeech/test-clean/1089/134691")
    >>> [(r["ID"], r["duration"], r["wrd"]) for r in rows][0]
    ('1089-134691-0000', 2.085, 'HE COULD WAIT NO LONGER')
    """
    folder = Path(chapter)
    speaker, chapter_id = folder.parent.name, folder.name
    prefix = f"{speaker}-{chapter_id}"
    trans = folder / f"{prefix}.trans.txt"
    audio = {p.stem: p for p in folder.glob("*.flac")}
    if not trans.is_file():
        if not audio:
            return []
        raise DataError(
            f"{str(trans)!r} not found, but {str(folder)!r} holds {len(audio)} .flac files; restore the "
            "transcript from the original corpus, or delete the chapter folder."
        )
    if trans.stat().st_size == 0:
        raise DataError(
            f"{str(trans)!r} is a zero-length file; restore it from the original corpus, or delete the "
            "chapter folder."
        )
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    fix = "re-save the file as UTF-8 (LibriSpeech transcripts are upper-case ASCII)"
    for number, line in enumerate(read_text_lines(trans, fix=fix), start=1):
        if not line.strip():
            continue
        utt_id, _, words = line.strip().partition(" ")
        words = " ".join(words.split())
        match = _LINE.match(utt_id)
        if not match or f"{match.group(1)}-{match.group(2)}" != prefix or not words:
            raise DataError(
                f"{str(trans)!r} line {number}: expected '{prefix}-NNNN WORDS', got {line.strip()[:60]!r}; "
                "fix the line or restore the file from the original corpus."
            )
        if utt_id in seen:
            raise DataError(
                f"{str(trans)!r} line {number}: utterance {utt_id} appears twice; delete one of the lines."
            )
        seen.add(utt_id)
        if utt_id not in audio:
            raise DataError(
                f"{str(trans)!r} line {number}: utterance {utt_id} has no audio file "
                f"{str(folder / (utt_id + '.flac'))!r}; restore the audio, or delete the line."
            )
        info = require_format(audio_info(audio[utt_id]), sample_rate)
        rows.append(
            {
                "ID": utt_id,
                "duration": info.duration,
                "wav": str(audio[utt_id].resolve()),
                "spk_id": speaker,
                "wrd": words,
            }
        )
    extra = [audio[stem] for stem in sorted(set(audio) - seen)]
    if unlabeled is not None:
        unlabeled += extra
    elif extra:
        logger.warning(_unlabeled_message(extra, str(folder)))
    return rows


def _unlabeled_message(files: Sequence[Path], where: str) -> str:
    first = files[0]
    trans = first.parent / f"{first.parent.parent.name}-{first.parent.name}.trans.txt"
    return (
        f"Skipped {len(files)} .flac file(s) in {where!r} that no transcript line names, e.g. "
        f"{str(first)!r} (not in {str(trans)!r}); add a line '{first.stem} WORDS' for each, or delete them."
    )


def _read_split(split_folder: Path, select_n: int | None, sample_rate: int | None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    unlabeled: list[Path] = []
    for speaker in sorted(p for p in split_folder.iterdir() if p.is_dir()):
        for chapter in sorted(p for p in speaker.iterdir() if p.is_dir()):
            rows += read_chapter(chapter, sample_rate, unlabeled)
    if unlabeled:
        logger.warning(_unlabeled_message(unlabeled, str(split_folder)))
    rows.sort(key=lambda row: str(row["ID"]))
    return rows[:select_n] if select_n is not None else rows


def prepare_librispeech(
    data_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    tr_splits: Sequence[str] = ("train-clean-100",),
    dev_splits: Sequence[str] = ("dev-clean",),
    te_splits: Sequence[str] = ("test-clean",),
    select_n_sentences: int | Sequence[int | None] | None = None,
    merge_lst: Sequence[str] = (),
    merge_name: str | None = None,
    manifest_format: str = "csv",
    skip_prep: bool = False,
    sample_rate: int | None = 16000,
) -> dict[str, Path]:
    """Writes ``<save_folder>/<split>.csv`` (or ``.json``) for each LibriSpeech split.

    Skipped when all manifests exist and ``<save_folder>/opt_librispeech_prepare.json``
    holds the same options (including the data folder and its splits' modification stamps).

    Arguments
    ---------
    data_folder : path
        The ``LibriSpeech`` folder, holding the split folders (``train-clean-100``, ...).
    save_folder : path
        Where the manifests and the options file go (created if needed).
    tr_splits, dev_splits, te_splits : sequence of str
        Split folder names; a manifest is written for each.
    select_n_sentences : int or list, optional
        Keep only the first N utterances (by ID) of every split, or per split in the order
        ``tr_splits + dev_splits + te_splits`` (``None`` entries keep all).
    merge_lst : sequence of str
        Splits to concatenate into ``merge_name``. Besides, ``train.csv`` always merges
        ``tr_splits`` and ``dev.csv`` merges ``dev_splits`` (unless a split has that name).
    merge_name : str, optional
        File name of the merged manifest, e.g. ``"train_all.csv"``.
    manifest_format : str
        ``"csv"`` or ``"json"``.
    skip_prep : bool
        If True, do nothing (and only return the manifest paths).
    sample_rate : int or None
        The rate every ``.flac`` must have (LibriSpeech's 16000 Hz); ``None`` accepts any.

    Returns
    -------
    dict
        Split name, ``"train"``, ``"dev"`` (and ``merge_name``'s stem) -> manifest path.

    Example
    -------
    >>> import tempfile
    >>> from snn_asr.dataio import read_manifest
    >>> out = prepare_librispeech("/work/shared/data/librispeech-samples/LibriSpeech", tempfile.mkdtemp(),
    ...                           tr_splits=[], dev_splits=[], te_splits=["test-clean"])
    >>> read_manifest(out["test-clean"])["1089-134686-0001"]["wrd"]
    'STUFF IT INTO YOU HIS BELLY COUNSELLED HIM'
    """
    check_manifest_format(manifest_format)
    for name, value in (("tr_splits", tr_splits), ("dev_splits", dev_splits), ("te_splits", te_splits)):
        if isinstance(value, str):
            raise DataError(
                f"LibriSpeech {name} must be a list of split folder names, got the string {value!r}; "
                f"pass [{value}] (in the recipe: --{name.replace('tr_', 'train_').replace('te_', 'test_')} "
                f"'[{value}]')."
            )
    splits = list(dict.fromkeys([*tr_splits, *dev_splits, *te_splits]))
    if isinstance(select_n_sentences, int) or select_n_sentences is None:
        select = {split: select_n_sentences for split in splits}
    else:
        if len(select_n_sentences) != len(splits):
            raise ValueError(f"select_n_sentences needs one entry per split ({len(splits)}): {splits}")
        select = dict(zip(splits, select_n_sentences))
    unknown = [split for split in merge_lst if split not in splits]
    if unknown or (merge_lst and not merge_name):
        raise ValueError(
            f"merge_lst must name prepared splits and come with merge_name; got {list(merge_lst)}"
        )
    save = Path(save_folder)
    outputs = {split: save / f"{split}.{manifest_format}" for split in splits}
    merges = {name: list(group) for name, group in (("train", tr_splits), ("dev", dev_splits)) if group}
    if merge_lst and merge_name:
        merges[merge_name.removesuffix(f".{manifest_format}")] = list(merge_lst)
    merges = {name: group for name, group in merges.items() if name not in splits}
    outputs |= {name: save / f"{name}.{manifest_format}" for name in merges}
    if skip_prep:
        return outputs

    fix = f"pass the LibriSpeech folder that holds the split folders, or {GET_DATA}"
    root = require_folder(data_folder, "LibriSpeech data_folder", fix)
    for split in splits:
        if not (root / split).is_dir():
            have = sorted(p.name for p in root.iterdir() if p.is_dir())
            raise DataError(
                f"LibriSpeech split folder {str(root / split)!r} not found (data_folder has: "
                f"{', '.join(have) or 'no folders'}); pass only splits that exist (in the recipe: "
                "--train_splits, --dev_splits, --test_splits, e.g. --test_splits '[test-clean]'), "
                f"or {GET_DATA}."
            )
    options = corpus_options(
        PREP_VERSION,
        root,
        [root / split for split in splits],
        splits=splits,
        select_n_sentences=select,
        merge_lst=list(merge_lst),
        merge_name=merge_name,
        manifest_format=manifest_format,
        sample_rate=sample_rate,
    )

    def split_rows(split: str) -> list[dict[str, object]]:
        rows = _read_split(root / split, select[split], sample_rate)
        if not rows:
            raise DataError(
                f"LibriSpeech split folder {str(root / split)!r} holds no utterances; {GET_DATA}."
            )
        return rows

    return write_manifests("LibriSpeech", outputs, save / OPTIONS_FILE, options, split_rows, merges)


if __name__ == "__main__":
    from snn_asr.recipes.prepare import prepare_command

    sys.exit(prepare_command(prepare_librispeech))
