"""What every corpus preparation shares: check the options, stamp the data, write the manifests once.

A ``recipes/<Corpus>/<corpus>_prepare.py`` knows its corpus: the folder layout, the transcript
format, the checks, which utterances make each split. It hands :func:`write_manifests` a function
that returns one split's manifest rows, and the options that determine them (made with
:func:`corpus_options`: the data folder, its modification stamps, the splits, the formats). The
manifests are then written as SpeechBrain's preparations write them, "skip if done": only when one
is missing or the options saved beside them (``opt_<corpus>_prepare.json``) differ from this
call's. The options are saved after the last manifest, so a run killed halfway redoes it all.
Whatever is made later from the manifests (tokenizer, label encoder, n-gram) is keyed on them in
turn (:func:`snn_asr.dataio.column_stamp`).

Example
-------
>>> import tempfile
>>> save = Path(tempfile.mkdtemp())
>>> rows = lambda split: [{"ID": f"{split}1", "duration": 1.0, "wav": "/d/a.wav", "wrd": "HI"}]
>>> options = corpus_options(1, save, [save], splits=["train"])
>>> out = write_manifests("Demo", {"train": save / "train.csv"}, save / "opt.json", options, rows)
>>> out["train"].read_text().splitlines()
['ID,duration,wav,wrd', 'train1,1.0,/d/a.wav,HI']
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from snn_asr.dataio import DataError, folder_stamp, is_prepared, mark_prepared, read_manifest, write_manifest

logger = logging.getLogger(__name__)

__all__ = [
    "MANIFEST_FORMATS",
    "check_manifest_format",
    "corpus_options",
    "prepare_command",
    "write_manifests",
]

MANIFEST_FORMATS = ("csv", "json")


def check_manifest_format(manifest_format: str) -> str:
    """``manifest_format`` if SpeechBrain reads it (``csv`` or ``json``), else a ``ValueError``.

    Example
    -------
    >>> check_manifest_format("json")
    'json'
    """
    if manifest_format not in MANIFEST_FORMATS:
        raise ValueError(f"manifest_format must be 'csv' or 'json', got {manifest_format!r}")
    return manifest_format


def corpus_options(
    version: int, data_folder: str | os.PathLike, stamped: Iterable[str | os.PathLike], **options: Any
) -> dict[str, Any]:
    """The options a preparation's manifests depend on, with the data folder and its folders' stamps.

    ``version`` is the preparation's own (bump it when its output changes); ``stamped`` are the
    corpus folders whose modification times (:func:`~snn_asr.dataio.folder_stamp`) tell a corpus
    replaced in place; ``options`` are the rest (splits, phone set, format, sample rate).

    Example
    -------
    >>> sorted(corpus_options(1, "/", ["/"], splits=["train"]))
    ['data_folder', 'data_stamp', 'splits', 'version']
    """
    return {
        "version": version,
        "data_folder": str(Path(data_folder).resolve()),
        "data_stamp": folder_stamp(stamped),
        **options,
    }


def write_manifests(
    corpus: str,
    outputs: Mapping[str, Path],
    options_file: str | os.PathLike,
    options: Mapping[str, Any],
    split_rows: Callable[[str], Sequence[Mapping[str, Any]]],
    merges: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Path]:
    """Writes ``outputs`` (split name -> manifest path) unless they are up to date with ``options``.

    Arguments
    ---------
    corpus : str
        The corpus's name, for the log.
    outputs : mapping
        Every manifest the preparation promises, merged ones included.
    options_file : path
        Where ``options`` are saved after the manifests (:func:`~snn_asr.dataio.mark_prepared`).
    options : mapping
        What the manifests depend on (:func:`corpus_options`).
    split_rows : callable
        A split name -> its manifest rows (``ID``, ``duration``, ``wav``, ...), checked by the
        corpus; it raises a one-line :class:`~snn_asr.dataio.DataError` for bad data (an empty
        split included).
    merges : mapping, optional
        Manifest name -> the splits concatenated into it (e.g. ``train`` from ``train-clean-100``
        and ``train-clean-360``); written after the splits, from their manifests.

    Returns
    -------
    dict
        ``outputs``.
    """
    merges = dict(merges or {})
    if is_prepared(list(outputs.values()), options_file, options):
        logger.info(
            "%s manifests in %s are up to date; skipping preparation.", corpus, Path(options_file).parent
        )
        return dict(outputs)
    Path(options_file).parent.mkdir(parents=True, exist_ok=True)
    Path(options_file).unlink(missing_ok=True)
    for split, path in outputs.items():
        if split in merges:
            continue
        rows = split_rows(split)
        write_manifest(rows, path)
        speakers = len({row["spk_id"] for row in rows if "spk_id" in row})
        logger.info("%s: %d utterances of %d speakers", path, len(rows), speakers)
    for name, group in merges.items():
        rows = [{"ID": key, **row} for split in group for key, row in read_manifest(outputs[split]).items()]
        write_manifest(rows, outputs[name])
    mark_prepared(options_file, options)
    return dict(outputs)


def prepare_command(prepare: Callable[..., Mapping[str, Path]], argv: Sequence[str] | None = None) -> int:
    """``python <corpus>_prepare.py DATA_FOLDER SAVE_FOLDER``: a preparation run on its own.

    Writes the manifests (as the recipe would) and prints where; ``--help`` says what it does. A
    data problem is one line ``error: ...`` and exit status 1.
    """
    parser = argparse.ArgumentParser(description=(prepare.__doc__ or "").split("\n\n")[0].strip())
    parser.add_argument("data_folder", help="the corpus, in its distributed layout")
    parser.add_argument("save_folder", help="where the manifests go")
    parser.add_argument("--manifest-format", default="csv", choices=MANIFEST_FORMATS)
    args = parser.parse_args(argv)
    try:
        written = prepare(args.data_folder, args.save_folder, manifest_format=args.manifest_format)
    except (DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    for split, path in written.items():
        print(f"{split}: {path}")
    return 0
