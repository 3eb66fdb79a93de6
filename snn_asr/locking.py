"""One writer at a time: an exclusive lock on a file, held until the process ends (or is killed).

Two ``snn-asr transcribe --output X`` at once, or a recipe started twice on one output folder,
would interleave or corrupt what they write. :func:`hold_lock` (for the process's life) and
:func:`exclusive` (for a block) take ``fcntl.flock`` on a lock file beside the target. The
kernel drops it when the holder exits, however it exits (``kill -9`` included), so a stale lock
never blocks a later run. A second writer gets one line naming the target, the holder's process
id and the fix.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from snn_asr.dataio import DataError

__all__ = ["LockedError", "exclusive", "hold_lock"]

_HELD: list[IO] = []  # kept open for the process's life: closing a file drops its lock


class LockedError(DataError):
    """The target is being written by another process."""


def hold_lock(lock_file: str | os.PathLike, what: str, fix: str) -> None:
    """Holds an exclusive lock on ``lock_file`` for the rest of the process, or raises :class:`LockedError`.

    Example
    -------
    >>> import tempfile
    >>> hold_lock(tempfile.mkdtemp() + "/.lock", "the output folder", "wait for it")
    """
    _HELD.append(_acquire(lock_file, what, fix))


@contextmanager
def exclusive(lock_file: str | os.PathLike, what: str, fix: str) -> Iterator[None]:
    """The lock of :func:`hold_lock` for the ``with`` block only (a command called in-process again).

    Example
    -------
    >>> import tempfile
    >>> lock = tempfile.mkdtemp() + "/out.txt.lock"
    >>> with exclusive(lock, "'out.txt'", "wait"):
    ...     with exclusive(lock, "'out.txt'", "wait"):  # doctest: +ELLIPSIS
    ...         pass
    Traceback (most recent call last):
      ...
    snn_asr.locking.LockedError: 'out.txt' is in use by another process (pid ...); wait
    """
    handle = _acquire(lock_file, what, fix)
    try:
        yield
    finally:  # no lock file left behind; a second writer never waits (LOCK_NB), so none holds it open
        Path(lock_file).unlink(missing_ok=True)
        handle.close()


def _acquire(lock_file: str | os.PathLike, what: str, fix: str) -> IO:
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise LockedError(f"{what} is in use by another process (pid {holder}); {fix}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
