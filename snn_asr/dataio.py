"""Reading and checking corpus files, and writing SpeechBrain manifests.

Shared by the data preparation of the recipes (``recipes/*/..._prepare.py``):

- :func:`audio_info` and :func:`load_audio` read audio with ``soundfile`` (WAV, NIST
  SPHERE, FLAC, ...) and turn every kind of bad file into an :class:`AudioError`
  whose message is one line naming the file and the fix;
- :func:`require_format` checks a file's sample rate and channels against what the recipe
  expects (16 kHz mono): the recipes do not resample, so another rate is an error whose
  message gives the ``sox`` command that converts the file;
- :func:`read_text_lines` reads a UTF-8 text file, naming the file and line of a bad byte;
- :func:`write_manifest` writes a manifest in SpeechBrain's CSV (``ID,duration,wav,...``)
  or JSON format, readable by ``DynamicItemDataset.from_csv`` / ``from_json``;
- :func:`is_prepared` and :func:`mark_prepared` implement "skip if done": a preparation
  writes its options as JSON next to its outputs and is skipped only when all outputs
  exist *and* the saved options equal the current ones; :func:`folder_stamp` (a corpus's
  folders) and :func:`column_stamp` (a manifest's transcripts) go into those options, so
  changed data redo what was made from them.

All data problems raise :class:`DataError` (a ``ValueError``), with a one-line message.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from snn_asr.stderr_capture import decoder_note, quiet_stderr

__all__ = [
    "AudioError",
    "AudioInfo",
    "DataError",
    "DecoderWarning",
    "audio_info",
    "column_stamp",
    "folder_stamp",
    "is_prepared",
    "load_audio",
    "mark_prepared",
    "read_manifest",
    "read_text_lines",
    "require_folder",
    "require_format",
    "write_manifest",
]

_TAIL_FRAMES = 2048  # frames read at the end of a file to catch truncation cheaply
_UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's SF_COUNT_MAX: "length not in the header"
_CSV_VARIABLE = re.compile(r"\$[\w.]")


class DataError(ValueError):
    """A problem with the data on disk (missing folder, bad file, inconsistent transcripts).

    The message is always a single line: newlines in it are replaced by spaces.

    Example
    -------
    >>> str(DataError("a\\nb"))
    'a b'
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class AudioError(DataError):
    """An audio file that cannot be used: missing, empty, not audio, corrupt or truncated."""


class DecoderWarning(UserWarning):
    """A file that decoded, but whose decoder reported damage on the way (e.g. a corrupt MP3 frame)."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of a checked audio file.

    Example
    -------
    >>> AudioInfo("a.wav", sample_rate=16000, frames=8000, channels=1).duration
    0.5
    """

    path: str
    sample_rate: int
    frames: int
    channels: int
    format: str = ""  # libsndfile's major format: "WAV", "NIST", "FLAC", ...

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


_FIX = "re-copy or re-extract it from the original corpus, or delete it (and its transcript entry)"


def _audio_error(path: str | os.PathLike, problem: str, fix: str = _FIX) -> AudioError:
    return AudioError(f"Bad audio file {str(path)!r}: {problem}; {fix}.")


def _unknown_length_error(path: str) -> AudioError:
    """An error for a file whose header gives no length: empty, or streamed (unreadable by libsndfile)."""
    readable = 0
    try:
        with sf.SoundFile(path) as handle:
            readable = len(handle.read(1024, dtype="int16"))
    except Exception:  # libsndfile fails to seek in such files; the first block tells empty from not
        pass
    if readable == 0:
        return _audio_error(path, "the file holds 0 audio samples")
    return _audio_error(
        path,
        "its header gives no length (a streamed encoding, which libsndfile cannot read)",
        "re-encode it with a known length (e.g. sox IN.flac OUT.flac, then replace it), or delete it "
        "(and its transcript entry)",
    )


def _nist_declared_frames(path: str) -> int | None:
    """``sample_count`` from a NIST SPHERE header, or ``None`` if absent/unreadable."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    match = re.search(rb"sample_count\s+-i\s+(\d+)", head)
    return int(match.group(1)) if match else None


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Checks an audio file and returns its header facts, without decoding all of it.

    Catches, each as an :class:`AudioError` naming the file: a missing file, a
    zero-length or unreadable (permissions) file, a file that is not audio (or an unsupported/corrupt header),
    a file with 0 samples, a truncated file (data shorter than its header says,
    found by reading the last frames) and a float file holding NaN or infinite samples
    (read in full: only float files can).

    Arguments
    ---------
    path : str or PathLike
        Audio file in any format ``soundfile`` reads (WAV, NIST SPHERE, FLAC, ...).

    Returns
    -------
    AudioInfo
        ``sample_rate``, ``frames``, ``channels`` and ``duration`` (seconds).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> path = tempfile.mkdtemp() + "/a.wav"
    >>> sf.write(path, np.zeros(800, dtype="int16"), 8000, format="NIST", subtype="PCM_16")
    >>> audio_info(path).duration
    0.1
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _audio_error(path, "file not found", "check the path, or re-create the manifest")
    if os.path.getsize(path) == 0:
        raise _audio_error(path, "zero-length file (0 bytes)")
    try:
        open(path, "rb").close()
    except OSError as err:  # e.g. no read permission: libsndfile would only say "System error"
        raise _audio_error(
            path, f"cannot be read ({err.strerror})", "check its permissions (chmod +r)"
        ) from None
    try:
        with quiet_stderr():
            info = sf.info(path, verbose=True)
    except Exception as err:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        reason = " ".join(str(err).replace(f"Error opening {path!r}: ", "").split()).rstrip(".")
        with open(path, "rb") as handle:
            sphere = handle.read(7) == b"NIST_1A"
        fix = "decompress it with sph2pipe (shorten-compressed SPHERE is not supported)" if sphere else _FIX
        raise _audio_error(path, f"not a readable audio file ({reason})", fix) from None
    if info.frames <= 0:
        raise _audio_error(path, "the file holds 0 audio samples")
    if info.frames >= _UNKNOWN_LENGTH:  # e.g. a FLAC written as a stream (sox writes empty FLACs so)
        raise _unknown_length_error(path)
    if "should be" in (info.extra_info or ""):  # libsndfile's note on a short RIFF data chunk
        raise _audio_error(path, "truncated (its data chunk is shorter than its header says)")
    if info.format == "NIST":
        declared = _nist_declared_frames(path)
        if declared is not None and declared > info.frames:
            raise _audio_error(
                path, f"truncated (header declares {declared} samples, the file holds {info.frames})"
            )
    try:
        with quiet_stderr(), sf.SoundFile(path) as handle:
            start = max(0, handle.frames - _TAIL_FRAMES)
            handle.seek(start)
            tail = handle.read(handle.frames - start, dtype="int16")
    except Exception as err:
        raise _audio_error(path, f"corrupt or truncated ({' '.join(str(err).split())})") from None
    if len(tail) != info.frames - start:
        raise _audio_error(path, "truncated (fewer samples than its header says)")
    if info.subtype in ("FLOAT", "DOUBLE"):  # only float files can hold NaN or infinity
        with quiet_stderr():
            samples, _ = sf.read(path, dtype="float32")
        if not np.isfinite(samples).all():
            bad = int((~np.isfinite(samples)).sum())
            raise _audio_error(path, f"{bad} of its {samples.size} float samples are NaN or infinite")
    return AudioInfo(
        path=path,
        sample_rate=int(info.samplerate),
        frames=int(info.frames),
        channels=int(info.channels),
        format=str(info.format),
    )


def require_format(info: AudioInfo, sample_rate: int | None = 16000, channels: int | None = 1) -> AudioInfo:
    """Checks the sample rate and channel count of a file checked by :func:`audio_info`.

    The recipes read audio as it is on disk (no resampling), so a file at another rate
    (e.g. 8 kHz in a 16 kHz corpus) or a stereo file is an :class:`AudioError` naming the
    file and the ``sox`` command that fixes it. ``None`` accepts any value.

    Example
    -------
    >>> require_format(AudioInfo("a.flac", 16000, 800, 1)).duration
    0.05
    >>> require_format(AudioInfo("b.flac", 8000, 800, 1, "FLAC"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    snn_asr.dataio.AudioError: Bad audio file 'b.flac': sample rate 8000 Hz, but the recipe expects 16000 ...
    """
    sph = "-t sph " if info.format == "NIST" else ""  # sox takes TIMIT's .WAV for RIFF by its name
    if sample_rate is not None and info.sample_rate != sample_rate:
        raise _audio_error(
            info.path,
            f"sample rate {info.sample_rate} Hz, but the recipe expects {sample_rate} Hz",
            f"resample it (e.g. sox {sph}IN {sph}-r {sample_rate} OUT, then replace IN by OUT), "
            "or delete it (and its transcript entry)",
        )
    if channels is not None and info.channels != channels:
        raise _audio_error(
            info.path,
            f"{info.channels} channels, but the recipe expects {channels}",
            f"mix it down (e.g. sox {sph}IN {sph}-c {channels} OUT, then replace IN by OUT), "
            "or delete it (and its transcript entry)",
        )
    return info


def load_audio(path: str | os.PathLike, sample_rate: int | None = 16000) -> torch.Tensor:
    """Reads an audio file as a 1-D float tensor, downmixed to mono and resampled.

    Arguments
    ---------
    path : str or PathLike
        Audio file in any format ``soundfile`` reads (WAV, NIST SPHERE, FLAC, ...).
    sample_rate : int or None
        Target rate in Hz (``torchaudio.functional.resample``); ``None`` keeps the file's rate.

    Returns
    -------
    torch.Tensor
        (samples,) float32 in [-1, 1].

    Raises
    ------
    AudioError
        Missing, zero-length, non-audio, corrupt, truncated or empty file (one line,
        naming the file and the fix).

    Example
    -------
    >>> import tempfile, numpy as np, soundfile as sf
    >>> path = tempfile.mkdtemp() + "/a.flac"
    >>> sf.write(path, np.zeros((800, 2), dtype="int16"), 8000)
    >>> load_audio(path, 16000).shape
    torch.Size([1600])
    """
    info = audio_info(path)
    noise: list[str] = []
    try:
        with quiet_stderr() as noise:
            data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except Exception as err:
        detail = decoder_note(noise) or " ".join(str(err).split())
        raise _audio_error(path, f"corrupt ({detail})") from None
    if len(data) < info.frames:
        raise _audio_error(path, f"truncated (read {len(data)} of {info.frames} samples)")
    if noise:
        warnings.warn(
            DecoderWarning(
                f"{path}: the decoder reported damage ({decoder_note(noise)}); its transcript may miss words"
            ),
            stacklevel=2,
        )
    return _mono_at(data, rate, sample_rate)


def _mono_at(data: np.ndarray, rate: int, sample_rate: int | None) -> torch.Tensor:
    """(samples, channels) float32 -> (samples,) mono tensor at ``sample_rate`` (``None``: ``rate``)."""
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)  # mono: no second copy (long files)
    signal = torch.from_numpy(np.ascontiguousarray(mono))
    if sample_rate is not None and rate != sample_rate:
        import torchaudio.functional as F  # deferred: torchaudio is slow to import

        signal = F.resample(signal, rate, sample_rate)
    return signal


def read_text_lines(path: str | os.PathLike, fix: str = "re-save it as UTF-8") -> list[str]:
    """Reads a text file strictly as UTF-8 and returns its lines (without line ends).

    A byte sequence that is not UTF-8 raises a :class:`DataError` naming the file,
    the line number and ``fix``.

    Example
    -------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/t.txt"
    >>> _ = open(path, "wb").write(b"A B\\r\\nC\\n")
    >>> read_text_lines(path)
    ['A B', 'C']
    >>> _ = open(path, "wb").write(b"ok\\ncaf\\xe9\\n")
    >>> read_text_lines(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    snn_asr.dataio.DataError: ... line 2: not valid UTF-8 (byte 0xe9 at column 4); re-save it as UTF-8.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise DataError(f"Cannot read {path!r}: {err.strerror}; check the path and permissions.") from None
    lines = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path!r} line {number}: not valid UTF-8 (byte 0x{line[err.start]:02x} at column "
                f"{err.start + 1}); {fix}."
            ) from None
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def require_folder(path: str | os.PathLike, what: str, fix: str) -> Path:
    """Returns ``path`` as a ``Path`` if it is a folder, else raises a one-line :class:`DataError`.

    Example
    -------
    >>> require_folder("/no/such/dir", "TIMIT data_folder", "pass the folder holding TRAIN/")
    Traceback (most recent call last):
      ...
    snn_asr.dataio.DataError: TIMIT data_folder '/no/such/dir' not found; pass the folder holding TRAIN/.
    """
    folder = Path(path)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "not found"
        raise DataError(f"{what} {str(path)!r} {state}; {fix}.")
    return folder


def atomic_write_text(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file and a rename, so that a process killed
    while writing leaves the old file or the new one, never half of one.

    Example
    -------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "history.json"
    >>> atomic_write_text(out, "[]")
    >>> out.read_text(), sorted(p.name for p in out.parent.iterdir())
    ('[]', ['history.json'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_manifest(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Writes a SpeechBrain manifest: CSV (``.csv``) or JSON (``.json``), by the file suffix.

    Each row is a mapping with at least ``ID``, ``duration`` (seconds) and ``wav`` (path);
    CSV columns are ``ID, duration, wav`` and then the other keys in the order of the
    first row. JSON is ``{ID: {duration, wav, ...}}``. The file is written atomically.

    Arguments
    ---------
    rows : iterable of mappings
        One per utterance; IDs must be unique and all rows must have the same keys.
    path : str or PathLike
        Output file, ending in ``.csv`` or ``.json``.

    Returns
    -------
    Path
        The written file.

    Example
    -------
    >>> import tempfile
    >>> out = write_manifest([{"ID": "u1", "duration": 1.5, "wav": "/d/u1.wav", "wrd": "HI, YOU"}],
    ...                      tempfile.mkdtemp() + "/train.csv")
    >>> print(out.read_text().strip())
    ID,duration,wav,wrd
    u1,1.5,/d/u1.wav,"HI, YOU"
    """
    path = Path(path)
    rows = list(rows)
    columns = ["ID", "duration", "wav"]
    if rows:
        columns += [key for key in rows[0] if key not in columns]
    seen: set[str] = set()
    for row in rows:
        missing = [c for c in columns if c not in row]
        if missing or len(row) != len(columns):
            raise ValueError(f"manifest row {row.get('ID')!r} has keys {sorted(row)}, expected {columns}")
        if row["ID"] in seen:
            raise DataError(
                f"Duplicate utterance ID {row['ID']!r} while writing {str(path)!r}; "
                "each utterance must appear once in the corpus."
            )
        seen.add(row["ID"])
    if path.suffix == ".json":
        data = {row["ID"]: {c: row[c] for c in columns if c != "ID"} for row in rows}
        atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return path
    if path.suffix != ".csv":
        raise ValueError(f"manifest path must end in .csv or .json: {path}")
    lines: list[list[str]] = [columns]
    for row in rows:
        values = [repr(round(float(row[c]), 6)) if c == "duration" else str(row[c]) for c in columns]
        for value in values:
            if _CSV_VARIABLE.search(value):
                raise DataError(
                    f"Value {value!r} of utterance {row['ID']!r} contains '$', which SpeechBrain's CSV "
                    "reader takes for a variable; move the data to a path without '$' or write JSON."
                )
        lines.append(values)

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    atomic_write_text(path, buffer.getvalue())
    return path


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Reads a manifest written by :func:`write_manifest` as ``{ID: {column: value}}``.

    ``duration`` is returned as a float (as SpeechBrain does); other CSV values are strings.

    Example
    -------
    >>> import tempfile
    >>> out = write_manifest([{"ID": "u1", "duration": 2, "wav": "a.wav"}], tempfile.mkdtemp() + "/m.json")
    >>> read_manifest(out)
    {'u1': {'duration': 2.0, 'wav': 'a.wav'}}
    """
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            data = {row.pop("ID"): row for row in csv.DictReader(handle)}
    for row in data.values():
        row["duration"] = float(row["duration"])
    return data


def folder_stamp(folders: Iterable[str | os.PathLike]) -> dict[str, int]:
    """Modification times (ns) of folders, to detect a corpus replaced in place.

    Recorded with the preparation options: regenerating a corpus into the same path
    changes the stamp, so manifests are rebuilt.

    Example
    -------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> list(folder_stamp([d]).values())[0] > 0
    True
    """
    return {str(Path(f).resolve()): Path(f).stat().st_mtime_ns for f in folders}


def column_stamp(manifest: str | os.PathLike, column: str) -> str:
    """SHA-256 of one column of a manifest, row by row in file order: what was made from it is stale
    when this changes (a tokenizer or n-gram from the ``wrd`` column, say).

    Only that column counts, so moving the corpus (new ``wav`` paths) keeps the stamp.

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> a = write_manifest([{"ID": "u1", "duration": 1, "wav": "/a/u1.wav", "wrd": "HI"}], d / "a.csv")
    >>> b = write_manifest([{"ID": "u1", "duration": 1, "wav": "/b/u1.wav", "wrd": "HI"}], d / "b.json")
    >>> column_stamp(a, "wrd") == column_stamp(b, "wrd") != column_stamp(a, "wav")
    True
    """
    rows = read_manifest(manifest)
    if rows and column not in next(iter(rows.values())):
        raise DataError(f"{str(manifest)!r} has no column {column!r}; prepare the data again.")
    digest = hashlib.sha256()
    for row in rows.values():
        digest.update(str(row[column]).encode("utf-8") + b"\n")
    return digest.hexdigest()


def _normalized(options: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(options), sort_keys=True, default=str))


def is_prepared(
    outputs: Sequence[str | os.PathLike], options_file: str | os.PathLike, options: Mapping[str, Any]
) -> bool:
    """True if every output exists and ``options_file`` holds exactly ``options``.

    Arguments
    ---------
    outputs : sequence of paths
        The files the preparation writes.
    options_file : path
        JSON written by :func:`mark_prepared` after the outputs.
    options : mapping
        JSON-serialisable options of the current call (tuples compare equal to lists).

    Example
    -------
    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "train.csv").write_text("ID,duration,wav\\n")
    >>> is_prepared([d / "train.csv"], d / "opt.json", {"phn_set": 48})
    False
    >>> mark_prepared(d / "opt.json", {"phn_set": 48})
    >>> is_prepared([d / "train.csv"], d / "opt.json", {"phn_set": 48})
    True
    >>> is_prepared([d / "train.csv"], d / "opt.json", {"phn_set": 39})
    False
    """
    if not all(Path(p).is_file() for p in outputs):
        return False
    try:
        saved = json.loads(Path(options_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved == _normalized(options)


def mark_prepared(options_file: str | os.PathLike, options: Mapping[str, Any]) -> None:
    """Saves ``options`` as JSON; call after all outputs are written (see :func:`is_prepared`)."""
    atomic_write_text(Path(options_file), json.dumps(_normalized(options), indent=2, sort_keys=True) + "\n")
