"""What C libraries print: kept off the terminal, and turned into a phrase for our own one-line messages.

libsndfile's MP3 decoder (libmpg123) and kenlm's loader write straight to file descriptor 2,
past Python's ``sys.stderr``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["decoder_note", "quiet_stderr"]


@contextmanager
def quiet_stderr() -> Iterator[list[str]]:
    """Keeps what C libraries write straight to file descriptor 2 (libmpg123's frame errors,
    kenlm's loading bar) off the terminal; the list it yields holds those lines afterwards, for
    folding into one message.

    Redirecting Python's ``sys.stderr`` is not enough: those libraries print from C.
    """
    lines: list[str] = []
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. captured by a test runner)
        yield lines
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield lines
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            lines += [line for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip()]


def decoder_note(lines: list[str]) -> str:
    """The first decoder line, without libmpg123's ``[src/...:123] error:`` prefix."""
    return re.sub(r"^\[[^\]]*\]\s*(error:\s*)?", "", lines[0]).strip()[:120] if lines else ""
