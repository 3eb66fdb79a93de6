"""The real-speech samples in ``tests/data``: the files their ``SOURCE.txt`` names, with their licences."""

import re

import soundfile as sf
from corpora import FSDD, LIBRISPEECH, shared_corpus

SPEAKERS = ("george", "jackson", "nicolas", "theo")


def test_fsdd_sample_holds_the_files_its_source_names():
    names = sorted(p.name for p in (FSDD / "recordings").iterdir())
    assert names == sorted(f"{d}_{s}_{i}.wav" for d in range(10) for s in SPEAKERS for i in range(10))
    for path in (FSDD / "recordings").iterdir():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16"), path
    source = (FSDD / "SOURCE.txt").read_text()
    assert "26eb9aaf76e81b692f806f9140c2d2777410d7a1" in source and "CC BY-SA 4.0" in source
    assert "Attribution-ShareAlike 4.0" in (FSDD / "README.md").read_text()  # the dataset's own licence line


def test_fsdd_sample_is_unchanged_from_the_full_fsdd():
    full = shared_corpus("fsdd") / "recordings"
    for path in (FSDD / "recordings").iterdir():
        assert path.read_bytes() == (full / path.name).read_bytes(), path.name


def test_librispeech_sample_has_its_transcripts_and_licence():
    flacs = sorted(p.stem for p in LIBRISPEECH.rglob("*.flac"))
    assert flacs == ["1089-134686-0000", "1089-134686-0001", "1089-134691-0000", "1089-134691-0001"]
    lines = [line for t in LIBRISPEECH.rglob("*.trans.txt") for line in t.read_text().splitlines()]
    assert sorted(line.split(" ", 1)[0] for line in lines) == flacs
    assert all(re.fullmatch(r"[\d-]+ [A-Z' ]+", line) for line in lines)
    assert "Attribution 4.0" in (LIBRISPEECH / "LICENSE.TXT").read_text()
    assert "CC BY 4.0" in (LIBRISPEECH.parent / "SOURCE.txt").read_text()
