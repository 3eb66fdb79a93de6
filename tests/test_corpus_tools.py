"""The corpus tools: mini TIMIT (espeak-ng) and LibriSpeech-layout corpora (FSDD digits, espeak-ng)."""

from __future__ import annotations

import doctest
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tools"), str(REPO / "recipes" / "TIMIT"), str(REPO / "recipes" / "LibriSpeech")]

import espeak_synthesis  # noqa: E402
import librispeech_prepare as lp  # noqa: E402
import make_librispeech_corpus as mlc  # noqa: E402
import make_mini_timit as mmt  # noqa: E402
import sentence_grammar  # noqa: E402
import timit_labels as tl  # noqa: E402
import timit_prepare as tp  # noqa: E402
from corpora import FSDD, make_digits  # noqa: E402

from snn_asr.dataio import read_manifest  # noqa: E402

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def digest(root: Path) -> dict[str, str]:
    """SHA-1 of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def mini_timit(tmp_path_factory) -> Path:
    return mmt.make_mini_timit(
        tmp_path_factory.mktemp("mt") / "TIMIT", "tiny", seed=3, jobs=2, progress=False
    )


def utterance_files(root: Path) -> dict[str, dict[str, Path]]:
    """``{"TRAIN/DR2/FXXX0/SX3": {"wav": ..., "phn": ..., ...}}``."""
    found: dict[str, dict[str, Path]] = {}
    for path in root.rglob("*"):
        if path.is_file() and path.parent.parent.parent.parent == root:
            found.setdefault(str(path.with_suffix("").relative_to(root)), {})[path.suffix[1:].lower()] = path
    return found


@needs_espeak
def test_mini_timit_layout(mini_timit):
    meta = json.loads((mini_timit / "DOC" / "MINI_TIMIT.JSON").read_text())
    assert sorted(p.name for p in mini_timit.iterdir()) == ["DOC", "TEST", "TRAIN"]
    files = utterance_files(mini_timit)
    assert len(files) == 40 and all(sorted(f) == ["phn", "txt", "wav", "wrd"] for f in files.values())
    speakers = {key.split("/")[2].lower(): key.split("/")[0] for key in files}
    assert len(speakers) == 4 and set(meta["speakers"]) == set(speakers)
    assert {s for s, split in speakers.items() if split == "TEST"} <= tp.DEV_SPEAKERS | tp.CORE_TEST_SPEAKERS
    for key, f in files.items():
        split, dialect, speaker, utt = key.split("/")
        assert split in ("TRAIN", "TEST") and re.fullmatch(r"DR[1-8]", dialect)
        assert re.fullmatch(r"[FM][A-Z]{3}\d", speaker) and re.fullmatch(r"S[AIX]\d+", utt)
        assert f["wav"].read_bytes()[:16] == b"NIST_1A\n   1024\n"
        info = sf.info(f["wav"])
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("NIST", "PCM_16", 16000, 1)
        phn = [line.split() for line in f["phn"].read_text().splitlines()]
        assert phn[0][0] == "0" and int(phn[-1][1]) == info.frames and phn[0][2] == phn[-1][2] == "h#"
        assert all(a[1] == b[0] and int(a[0]) < int(a[1]) for a, b in zip(phn, phn[1:]))  # contiguous
        assert {p[2] for p in phn} <= set(tp.PHONES_61)
        text = f["txt"].read_text()
        assert re.fullmatch(rf"0 {info.frames} [A-Z][^\n]*[.?]\n", text)
        assert text.split(" ", 2)[2].strip() == meta["utterances"][f"{speaker.lower()}/{utt.lower()}"]
        wrd = [line.split() for line in f["wrd"].read_text().splitlines()]
        assert [w[2] for w in wrd] == sentence_grammar.sentence_words(text.split(" ", 2)[2])
        assert all(int(phn[0][1]) <= int(w[0]) < int(w[1]) <= int(phn[-1][0]) for w in wrd)
    assert meta["utterances"][f"{next(iter(speakers))}/sa1"] == mmt.SA_SENTENCES["sa1"]


@needs_espeak
def test_mini_timit_labels_match_espeak(mini_timit):
    """The .PHN phones are espeak-ng's own phonemes for the text (CLI --ipa, mapped), in order."""
    meta = json.loads((mini_timit / "DOC" / "MINI_TIMIT.JSON").read_text())
    closures = set(tl.CLOSURES.values())
    for key, f in utterance_files(mini_timit).items():
        speaker, utt = key.split("/")[2].lower(), key.split("/")[3].lower()
        voice = meta["speakers"][speaker]
        command = ["espeak-ng", "-q", "--ipa", "--sep=_", "-v", voice["voice"], "-s", str(voice["rate"]),
                   "-p", str(voice["pitch"]), meta["utterances"][f"{speaker}/{utt}"]]  # fmt: skip
        ipa = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        expected = [p for token in re.split(r"[_\s]+", ipa) for p in tl.ipa_to_timit(token.replace("ʲ", ""))]
        labels = [line.split()[2] for line in f["phn"].read_text().splitlines()]
        assert [p for p in labels if p not in closures | {"h#", "pau"}] == expected, key
        for stop, closure in tl.CLOSURES.items():  # every stop and affricate has its closure before it
            assert all(labels[i - 1] == closure for i, p in enumerate(labels) if p == stop and i > 0), key


@needs_espeak
def test_mini_timit_transcription_spot_check():
    """A hand-checked TIMIT transcription of espeak-ng's American voice."""
    synthesis = espeak_synthesis.synthesize("en-us", "The boy caught a yellow fish.")
    phones = " ".join(p for _, _, p in tl.timit_segments(synthesis))
    assert phones == "h# dh ax bcl b oy kcl k ao tcl t ax y eh l ow f ih sh h#"
    words = tl.word_segments(synthesis, "The boy caught a yellow fish.", tl.timit_segments(synthesis))
    assert [w for _, _, w in words] == ["the", "boy", "caught", "a", "yellow", "fish"]
    assert all(a[1] <= b[0] for a, b in zip(words, words[1:]))


@needs_espeak
def test_mini_timit_silence_is_quiet(mini_timit):
    ratios = []
    for f in utterance_files(mini_timit).values():
        audio = sf.read(f["wav"], dtype="float64")[0]
        energy: dict[str, list[float]] = {"sil": [], "vowel": []}
        for start, end, phone in (line.split() for line in f["phn"].read_text().splitlines()):
            kind = (
                "sil"
                if phone in ("h#", "pau")
                else "vowel"
                if phone in ("aa", "iy", "ae", "ay", "ow")
                else None
            )
            if kind:
                energy[kind].append(float(np.mean(audio[int(start) : int(end)] ** 2)))
        if energy["vowel"]:
            ratios.append(np.mean(energy["vowel"]) / np.mean(energy["sil"]))
    assert min(ratios) > 100  # vowels at least 20 dB above the silences


@needs_espeak
def test_mini_timit_prepares(mini_timit, tmp_path):
    out = tp.prepare_timit(mini_timit, tmp_path)
    data = {split: read_manifest(path) for split, path in out.items()}
    assert [len({r["spk_id"] for r in rows.values()}) for rows in data.values()] == [2, 1, 1]
    assert all(len(rows) == 8 * len({r["spk_id"] for r in rows.values()}) for rows in data.values())
    for rows in data.values():
        for row in rows.values():
            assert set(row["phn"].split()) <= set(tp.PHONES_48) and row["phn"].startswith("sil ")
            assert row["duration"] == pytest.approx(sf.info(row["wav"]).duration)


@needs_espeak
def test_mini_timit_deterministic_and_lowercase(mini_timit, tmp_path):
    again = mmt.make_mini_timit(tmp_path / "again", "tiny", seed=3, jobs=1, progress=False)
    assert digest(again) == digest(mini_timit)  # same seed, other number of processes: same bytes
    lower = mmt.make_mini_timit(tmp_path / "lower", "tiny", seed=4, lowercase=True, progress=False)
    names = [p.name for p in lower.rglob("*")]
    assert all(name == name.lower() for name in names) and "mini_timit.json" in names
    assert any(p.suffix == ".wav" for p in lower.rglob("*")) and digest(lower) != digest(mini_timit)
    out = tp.prepare_timit(lower, tmp_path / "save")
    assert sum(len(read_manifest(p)) for p in out.values()) == 32
    with pytest.raises(SystemExit, match="not empty; pass --overwrite"):
        mmt.make_mini_timit(lower, "tiny", seed=4, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not a mini TIMIT"):
        mmt.make_mini_timit(tmp_path / "other", "tiny", overwrite=True, progress=False)


def test_mini_timit_plan_sizes():
    ci = mmt.plan_corpus("ci", 0)
    assert len(ci) == 400 and ci == mmt.plan_corpus("ci", 0) and ci != mmt.plan_corpus("ci", 1)
    large = mmt.plan_corpus("large", 0)
    splits = {}
    for u in large:
        splits.setdefault(u.speaker.split, set()).add(u.speaker.id)
    assert len(splits["train"]) == 462 and len(splits["test"]) == 168 and len(large) == 6300
    assert tp.DEV_SPEAKERS | tp.CORE_TEST_SPEAKERS <= splits["test"] and not splits["train"] & splits["test"]
    sx = {u.id: u.text for u in large if u.id.startswith("sx")}
    assert min(int(k[2:]) for k in sx) == 3 and max(int(k[2:]) for k in sx) == 452  # as in TIMIT
    train_text = {u.text for u in large if u.speaker.split == "train" and not u.id.startswith("sa")}
    test_text = {u.text for u in large if u.speaker.split == "test" and not u.id.startswith("sa")}
    assert not train_text & test_text


def test_digits_corpus(tmp_path):
    out = tmp_path / "digits"
    make_digits(out, "--size", "tiny", "--seed", "5", "--jobs", "2")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "dev-clean",
        "test-clean",
        "train-clean-100",
    ]
    transcripts: dict[str, str] = {}
    for trans in out.rglob("*.trans.txt"):
        speaker, chapter = trans.parent.parent.name, trans.parent.name
        assert trans.name == f"{speaker}-{chapter}.trans.txt" and trans.parent.parent.parent.parent == out
        lines = trans.read_text().splitlines()
        assert lines == sorted(lines) and trans.read_text().endswith("\n")
        for line in lines:
            utt, words = line.split(" ", 1)
            assert re.fullmatch(rf"{speaker}-{chapter}-\d{{4}}", utt)
            assert 2 <= len(words.split()) <= 6 and set(words.split()) <= set(mlc.DIGIT_WORDS)
            transcripts[utt] = words
            info = sf.info(trans.parent / f"{utt}.flac")
            assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", 16000, 1)
    assert len(transcripts) == 38 and len(list(out.rglob("*.flac"))) == 38
    meta = json.loads((out / "CORPUS.JSON").read_text())
    split_of = {p.stem: p.parents[2].name for p in out.rglob("*.flac")}
    speakers: dict[str, set[str]] = {}
    for utt, split in split_of.items():
        speakers.setdefault(split, set()).add(meta["utterances"][utt]["speaker"])
    assert speakers["test-clean"] == {"theo"} and "theo" not in speakers["train-clean-100"]
    for utt, recipe in meta["utterances"].items():
        digits = [mlc.DIGIT_WORDS[int(Path(f).name[0])] for f in recipe["files"]]
        assert " ".join(digits) == transcripts[utt]
        indices = [int(Path(f).stem.split("_")[2]) for f in recipe["files"]]
        split = split_of[utt]
        assert split != "dev-clean" or all(i < 5 for i in indices)
        assert split != "train-clean-100" or all(i >= 5 for i in indices)
    again = tmp_path / "again"
    mlc.main(
        ["digits", str(again), "--fsdd", str(FSDD), "--size", "tiny", "--seed", "5", "--jobs", "1", "--quiet"]
    )
    assert digest(again) == digest(out)
    manifests = lp.prepare_librispeech(out, tmp_path / "save")  # the recipe's default splits
    assert sorted(manifests) == ["dev", "dev-clean", "test-clean", "train", "train-clean-100"]
    assert read_manifest(manifests["train"]) == read_manifest(manifests["train-clean-100"])
    rows = read_manifest(manifests["test-clean"])
    assert {r["wrd"] for r in rows.values()} == {transcripts[u] for u in rows}
    for r in rows.values():  # the FLAC's length: 2-6 digits (0.14 s or more each), 240 ms of pauses or more
        assert r["duration"] == pytest.approx(sf.info(r["wav"]).duration) and r["duration"] > 0.5


def test_digits_speaker_flags():
    fsdd = mlc.scan_fsdd(FSDD)
    plan = mlc.plan_digits(fsdd, "tiny", 0, test_speaker="jackson", dev_speaker="george")
    by_split = {s: {i.recipe["speaker"] for i in plan if i.split == s} for s in ("train", "dev", "test")}
    assert by_split == {"train": set(fsdd) - {"jackson", "george"}, "dev": {"george"}, "test": {"jackson"}}
    with pytest.raises(SystemExit, match="not in the FSDD folder"):
        mlc.plan_digits(fsdd, "tiny", 0, test_speaker="nobody")


def test_digits_default_fsdd(tmp_path, monkeypatch):
    """``--fsdd`` defaults to ../shared/data/fsdd, else to the sample, which is too small for ``large``."""
    monkeypatch.setattr(mlc, "SHARED_FSDD", tmp_path / "full")
    assert mlc.default_fsdd() == FSDD == mlc.SAMPLE_FSDD
    (tmp_path / "full" / "recordings").mkdir(parents=True)
    assert mlc.default_fsdd() == tmp_path / "full"
    monkeypatch.chdir(REPO)  # the sample as a user names it
    with pytest.raises(
        SystemExit, match=r"^make_librispeech_corpus: --size large needs more: .* pass --fsdd"
    ):
        mlc.main(["digits", str(tmp_path / "large"), "--fsdd", "tests/data/fsdd", "--size", "large"])
    assert not (tmp_path / "large").exists()


@needs_espeak
def test_espeak_librispeech_corpus(tmp_path):
    out = mlc.write_corpus(tmp_path / "es", mlc.plan_espeak("tiny", 2), "espeak", 2, {"readme": "x"}, jobs=2,
                           progress=False)  # fmt: skip
    rows = {}
    for split in ("train-clean-100", "dev-clean", "test-clean"):
        rows[split] = read_manifest(lp.prepare_librispeech(out, tmp_path / "save", tr_splits=[split],
                                                           dev_splits=[], te_splits=[])[split])  # fmt: skip
    assert [len(r) for r in rows.values()] == [24, 6, 8]
    speakers = [{r["spk_id"] for r in split.values()} for split in rows.values()]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])
    texts = [r["wrd"] for split in rows.values() for r in split.values()]
    assert len(set(texts)) == len(texts) and all(re.fullmatch(r"[A-Z' ]+", t) for t in texts)
    assert all(sf.info(r["wav"]).samplerate == 16000 for split in rows.values() for r in split.values())


@needs_espeak
def test_tools_help_and_doctests():
    for tool in ("make_mini_timit.py", "make_librispeech_corpus.py"):
        result = subprocess.run(
            [sys.executable, str(REPO / "tools" / tool), "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0 and "usage:" in result.stdout
    for module in (mmt, mlc, tp, lp):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0, module.__name__
