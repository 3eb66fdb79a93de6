"""Where the tests' corpora are: real-speech samples in ``tests/data``, or full corpora in ``../shared``.

The samples, in the repository (each folder's ``SOURCE.txt`` names its origin, commit, licence and files):

- :data:`FSDD`: 400 recordings of the Free Spoken Digit Dataset (CC BY-SA 4.0), digits 0-9 of the
  speakers george, jackson, nicolas and theo, indices 0-9 (0-4: the dataset's test part). The tests'
  connected-digit corpora (``--size tiny``, ``ci``) are made from it, in a fresh clone as in CI.
- :data:`LIBRISPEECH`: four LibriSpeech test-clean utterances (CC BY 4.0) in LibriSpeech's layout.

A corpus that only ``../shared/data`` holds (the full FSDD, AN4) comes from :func:`shared_corpus`,
which skips the test with one line saying what it needs and where to get it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO / "tests" / "data" / "fsdd"
LIBRISPEECH = REPO / "tests" / "data" / "librispeech-samples" / "LibriSpeech"
SHARED = REPO.parent / "shared" / "data"
GET_SHARED = {  # ../shared/data/<name>: what it is, and how to get it there
    "fsdd": "the full FSDD (50 recordings per digit and speaker): git clone "
    "https://github.com/Jakobovski/free-spoken-digit-dataset ../shared/data/fsdd",
    "an4": "AN4 (the CMU Census database, 16 kHz WAV): git clone https://github.com/cmusphinx/an4 "
    "../shared/data/an4",
}


def shared_corpus(name: str) -> Path:
    """The folder ``../shared/data/<name>`` (a key of :data:`GET_SHARED`); else skips the calling test.

    The skip is one line: ``needs AN4 (...): git clone ... ../shared/data/an4``.
    """
    folder = SHARED / name
    if not folder.is_dir():
        pytest.skip(f"needs {GET_SHARED[name]}")
    return folder


def make_digits(out: Path, *options: str) -> Path:
    """Makes a connected-digit corpus from :data:`FSDD` in ``out`` and returns ``out``.

    ``options`` are ``tools/make_librispeech_corpus.py digits`` options, e.g. ``"--size", "tiny"``.
    """
    tool = REPO / "tools" / "make_librispeech_corpus.py"
    cmd = [sys.executable, str(tool), "digits", str(out), "--fsdd", str(FSDD), "--quiet", *options]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out
