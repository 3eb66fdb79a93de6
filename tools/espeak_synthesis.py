"""espeak-ng through its C library: speech with the time of every phoneme it synthesizes.

Shared by ``make_mini_timit.py`` and ``make_librispeech_corpus.py``. Each synthesis runs in
a fresh fork, since libespeak-ng keeps state between calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
from dataclasses import dataclass

import numpy as np

ESPEAK_RATE = 22050


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_EVENT_WORD, _EVENT_PHONEME = 1, 7
_PARAM_RATE, _PARAM_PITCH = 1, 3


@dataclass(frozen=True)
class Phoneme:
    """One phoneme espeak-ng synthesized: start sample (22.05 kHz), mnemonic and IPA names."""

    sample: int
    name: str
    ipa: str

    @property
    def is_pause(self) -> bool:
        """espeak's pauses are the phonemes named ``_``, ``_:``, ``_!``, ..."""
        return self.name.startswith("_")


@dataclass(frozen=True)
class Synthesis:
    """espeak-ng output: int16 audio at 22.05 kHz, its phonemes, and its words as
    ``(start sample, 1-based text position, length in characters)``."""

    audio: np.ndarray
    phonemes: list[Phoneme]
    words: list[tuple[int, int, int]]


def _load_espeak() -> ctypes.CDLL:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError:
        raise SystemExit(
            "make_mini_timit: libespeak-ng not found; install espeak-ng (apt-get install espeak-ng)"
        ) from None


def _synthesize_here(voice: str, text: str, rate: int, pitch: int, ipa: bool) -> tuple:
    """Runs espeak-ng in this process (call in a fresh fork): audio, phoneme and word events."""
    lib = _load_espeak()
    chunks: list[np.ndarray] = []
    phonemes: list[tuple[int, str]] = []
    words: list[tuple[int, int, int]] = []

    def callback(wav, count, events):
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != 0:
            event = events[i]
            if event.type == _EVENT_PHONEME:
                phonemes.append((event.sample, event.id.string.decode("utf-8", "replace")))
            elif event.type == _EVENT_WORD:
                words.append((event.sample, event.text_position, event.length))
            i += 1
        return 0

    handle = _CALLBACK(callback)
    if lib.espeak_Initialize(2, 0, None, 3 if ipa else 1) <= 0:  # synchronous, phoneme events
        raise RuntimeError("espeak_Initialize failed; is espeak-ng-data installed?")
    lib.espeak_SetSynthCallback(handle)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
    lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
    data = text.encode()
    if lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:  # POS_CHARACTER, UTF-8
        raise RuntimeError(f"espeak_Synth failed for {text!r}")
    lib.espeak_Synchronize()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return audio, phonemes, words


def _in_fork(function, *args):
    """``function(*args)`` in a forked child (a pristine copy of this process); returns its result."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the parent's code, whatever happens
        try:
            os.close(read_fd)
            try:
                result = (True, function(*args))
            except BaseException as err:  # reported to the parent
                result = (False, f"{type(err).__name__}: {err}")
            with os.fdopen(write_fd, "wb") as pipe:
                pickle.dump(result, pipe)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError("espeak-ng synthesis process died")
    ok, value = pickle.loads(payload)
    if not ok:
        raise RuntimeError(value)
    return value


def synthesize(voice: str, text: str, rate: int = 175, pitch: int = 50) -> Synthesis:
    """Speaks ``text`` with espeak-ng; returns the audio and the timed phonemes and words.

    libespeak-ng keeps state from one synthesis to the next (the audio of a sentence shifts
    by a few samples), so each synthesis runs in a fresh fork of this process: the result
    depends only on the arguments. It runs twice, once reporting espeak's phoneme
    mnemonics (which tell pauses apart) and once their IPA names.

    Arguments
    ---------
    voice : str
        espeak-ng voice, e.g. ``"en-us+f2"``.
    text : str
        The sentence.
    rate, pitch : int
        Words per minute; pitch 0-100.

    Returns
    -------
    Synthesis
        ``audio`` (samples,) int16 at 22.05 kHz; ``phonemes`` in order; ``words``.

    Example
    -------
    >>> out = synthesize("en-us", "Hello there.")
    >>> [p.ipa for p in out.phonemes if not p.is_pause]
    ['h', 'ə', 'l', 'oʊ', 'ð', 'ɛɹ']
    >>> len(out.words), out.audio.dtype
    (2, dtype('int16'))
    """
    audio, names, words = _in_fork(_synthesize_here, voice, text, rate, pitch, False)
    audio_ipa, ipas, _ = _in_fork(_synthesize_here, voice, text, rate, pitch, True)
    if len(names) != len(ipas) or not np.array_equal(audio, audio_ipa):
        raise RuntimeError(f"espeak-ng gave different results for the same input: {voice} {text!r}")
    phonemes = [Phoneme(s, name, ipa) for (s, name), (_, ipa) in zip(names, ipas)]
    return Synthesis(audio=audio, phonemes=phonemes, words=words)
