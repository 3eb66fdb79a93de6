"""AN4 data preparation: SpeechBrain manifests for train, dev and test.

AN4 (the CMU Census database: spelled letters, digits, dates and a few commands; 16 kHz,
close-talking microphone) is distributed in three layouts, all read here. ``data_folder`` is
the folder holding ``wav/`` and ``etc/`` (or the one holding ``an4/``, as the tarballs unpack)::

    wav/an4_clstk/<speaker>/<utterance>.wav    RIFF WAV (github.com/cmusphinx/an4)
    wav/an4_clstk/<speaker>/<utterance>.sph    NIST SPHERE (an4_sphere.tar.gz: ESPnet, Kaldi)
    wav/an4_clstk/<speaker>/<utterance>.raw    16-bit big-endian 16 kHz (an4_raw.bigendian.tar.gz)
    wav/an4test_clstk/<speaker>/<utterance>.*  the test speakers, the same way
    etc/an4_train.transcription                "<s> WORDS </s> (utterance-id)" a line
    etc/an4_test.transcription                 "WORDS (utterance-id)" a line

``.raw`` files carry no header, so they are converted once to WAV in ``save_folder/wav``
(SpeechBrain's audio reader needs one); WAV and SPHERE files are read where they are.

Splits, as ESPnet's AN4 recipe makes them, so that dev figures compare too:

- ``dev``: the first ``dev_utterances`` (100) of the training list sorted by speaker and
  utterance: 8 whole speakers (fash, fbbh, fclc, fejs, ffmm, fjam, fjdn, fjmd);
- ``train``: the other 848 utterances (66 speakers);
- ``test``: ``an4test_clstk``, 130 utterances of 10 speakers heard in neither.

Manifest columns: ``ID`` (the utterance id, e.g. ``an251-fash-b``), ``duration`` (s), ``wav``,
``spk_id`` and ``wrd`` (the words, upper case, without ``<s>``/``</s>``). Bad data stops the
preparation with one line naming the file and the fix: a missing folder or transcription file,
a malformed or duplicate transcription line, an utterance without audio, unreadable audio or
audio not at ``sample_rate``.

Example
-------
>>> from an4_prepare import prepare_an4  # doctest: +SKIP
>>> prepare_an4("/data/an4", "results/save")  # doctest: +SKIP
{'train': PosixPath('results/save/train.csv'), 'dev': ..., 'test': ...}
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from snn_asr.dataio import DataError, audio_info, read_text_lines, require_folder, require_format
from snn_asr.recipes.prepare import check_manifest_format, corpus_options, write_manifests

__all__ = ["AUDIO_EXTENSIONS", "prepare_an4", "read_transcription"]

PREP_VERSION = 1
OPTIONS_FILE = "opt_an4_prepare.json"
AUDIO_EXTENSIONS = (".wav", ".sph", ".raw")
"""The layouts' audio files, in the order looked for."""
RAW_RATE = 16000
"""AN4's ``.raw`` files: 16-bit signed big-endian PCM at 16 kHz, mono (CMU's README)."""
GET_DATA = (
    "get AN4 with: git clone https://github.com/cmusphinx/an4 (or CMU's an4_sphere.tar.gz), "
    "and pass the folder holding wav/ and etc/"
)
SPLITS = {
    "train": ("an4_train.transcription", "an4_clstk"),
    "test": ("an4_test.transcription", "an4test_clstk"),
}
_LINE = re.compile(r"^(?:<s>\s+)?(?P<words>.*?)\s*(?:</s>)?\s*\((?P<id>[^()\s]+)\)$")


def read_transcription(path: str | os.PathLike) -> dict[str, str]:
    """Utterance id -> words of an AN4 ``.transcription`` file, checked line by line.

    Example
    -------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "an4_train.transcription"
    >>> _ = path.write_text("<s> YES </s> (an251-fash-b)\\nRUBOUT G M (an406-fcaw-b)\\n")
    >>> read_transcription(path)
    {'an251-fash-b': 'YES', 'an406-fcaw-b': 'RUBOUT G M'}
    """
    fix = "restore it from the AN4 distribution (etc/)"
    utterances: dict[str, str] = {}
    for number, line in enumerate(read_text_lines(path, fix=fix), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        words = " ".join(match["words"].split()) if match else ""
        if not match or not words or not re.fullmatch(r"[A-Z' ]+", words) or match["id"].count("-") != 2:
            raise DataError(
                f"{str(path)!r} line {number}: expected '<s> WORDS </s> (anNNN-speaker-b)', got "
                f"{line.strip()[:60]!r}; fix the line, or {fix}."
            )
        if match["id"] in utterances:
            raise DataError(
                f"{str(path)!r} line {number}: utterance {match['id']} appears twice; delete one of them."
            )
        utterances[match["id"]] = words
    if not utterances:
        raise DataError(f"{str(path)!r} holds no transcription lines; {fix}.")
    return utterances


def _root(data_folder: str | os.PathLike) -> Path:
    """The folder holding ``wav/`` and ``etc/``: ``data_folder`` or its ``an4/``."""
    root = require_folder(data_folder, "AN4 data_folder", GET_DATA)
    if not (root / "etc").is_dir() and (root / "an4" / "etc").is_dir():
        root = root / "an4"
    for name in ("wav", "etc"):
        require_folder(
            root / name, f"AN4 {name} folder", f"the AN4 data_folder holds wav/ and etc/; {GET_DATA}"
        )
    return root


def _audio_file(folder: Path, utt_id: str) -> Path | None:
    return next(
        (folder / f"{utt_id}{ext}" for ext in AUDIO_EXTENSIONS if (folder / f"{utt_id}{ext}").is_file()), None
    )


def _raw_to_wav(raw: Path, wav: Path) -> Path:
    """Converts a headerless AN4 ``.raw`` file to WAV once (kept while newer than the ``.raw``)."""
    if wav.is_file() and wav.stat().st_mtime >= raw.stat().st_mtime:
        return wav
    data = np.frombuffer(raw.read_bytes(), dtype=">i2")
    if data.size == 0:
        raise DataError(f"{str(raw)!r} holds no samples (0 bytes); restore it from the AN4 distribution.")
    wav.parent.mkdir(parents=True, exist_ok=True)
    partial = wav.with_suffix(".partial.wav")
    sf.write(partial, data.astype(np.int16), RAW_RATE, subtype="PCM_16")
    os.replace(partial, wav)
    return wav


def _split_rows(root: Path, save: Path, split: str, sample_rate: int | None) -> list[dict[str, object]]:
    """Manifest rows of AN4's ``train`` or ``test`` list, sorted by speaker then utterance."""
    listing, audio_folder = SPLITS[split]
    transcription = root / "etc" / listing
    if not transcription.is_file():
        raise DataError(f"AN4 transcription file {str(transcription)!r} not found; {GET_DATA}.")
    rows = []
    for utt_id, words in read_transcription(transcription).items():
        speaker = utt_id.split("-")[1]
        folder = root / "wav" / audio_folder / speaker
        audio = _audio_file(folder, utt_id)
        if audio is None:
            raise DataError(
                f"{str(transcription)!r}: utterance {utt_id} has no audio file {str(folder / utt_id)}"
                f"{{{','.join(AUDIO_EXTENSIONS)}}}; restore the audio, or delete its line."
            )
        if audio.suffix == ".raw":
            audio = _raw_to_wav(audio, save / "wav" / audio_folder / speaker / f"{utt_id}.wav")
        info = require_format(audio_info(audio), sample_rate)
        rows.append(
            {
                "ID": utt_id,
                "duration": info.duration,
                "wav": str(audio.resolve()),
                "spk_id": speaker,
                "wrd": words,
            }
        )
    return sorted(rows, key=lambda row: (row["spk_id"], row["ID"]))


def prepare_an4(
    data_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    dev_utterances: int = 100,
    manifest_format: str = "csv",
    skip_prep: bool = False,
    sample_rate: int | None = 16000,
) -> dict[str, Path]:
    """Writes ``<save_folder>/{train,dev,test}.csv`` (or ``.json``) for AN4.

    Skipped when the manifests exist and ``<save_folder>/opt_an4_prepare.json`` holds the same
    options (the data folder and its stamps included).

    Arguments
    ---------
    data_folder : path
        The folder holding ``wav/`` and ``etc/`` (or ``an4/`` with them), in any of the three layouts.
    save_folder : path
        Where the manifests, the options file and converted ``.raw`` audio go.
    dev_utterances : int
        The first utterances of the sorted training list that make ``dev`` (ESPnet: 100).
    manifest_format : str
        ``"csv"`` or ``"json"``.
    skip_prep : bool
        If True, only return the manifest paths.
    sample_rate : int or None
        The rate every file must have (AN4's 16000 Hz); ``None`` accepts any.

    Returns
    -------
    dict
        ``train``, ``dev``, ``test`` -> manifest path.
    """
    check_manifest_format(manifest_format)
    save = Path(save_folder)
    outputs = {split: save / f"{split}.{manifest_format}" for split in ("train", "dev", "test")}
    if skip_prep:
        return outputs
    root = _root(data_folder)
    options = corpus_options(
        PREP_VERSION,
        root,
        [root / "etc", root / "wav"],
        dev_utterances=dev_utterances,
        manifest_format=manifest_format,
        sample_rate=sample_rate,
    )
    lists: dict[str, list[dict[str, object]]] = {}

    def split_rows(split: str) -> list[dict[str, object]]:
        if split == "test":
            return _split_rows(root, save, "test", sample_rate)
        if "train" not in lists:
            lists["train"] = _split_rows(root, save, "train", sample_rate)
        training = lists["train"]
        if not 0 < dev_utterances < len(training):
            raise ValueError(
                f"dev_utterances is {dev_utterances}; AN4's training list has {len(training)} utterances: "
                "pass a number in between (ESPnet's: 100)"
            )
        return training[dev_utterances:] if split == "train" else training[:dev_utterances]

    return write_manifests("AN4", outputs, save / OPTIONS_FILE, options, split_rows)


if __name__ == "__main__":
    from snn_asr.recipes.prepare import prepare_command

    sys.exit(prepare_command(prepare_an4))
