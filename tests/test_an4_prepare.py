"""AN4 preparation: its three distributed layouts, ESPnet's dev split, and one-line errors for bad data.

The layouts are built in a temp folder from short synthetic recordings (no corpus needed); the
last test converts real AN4 files with sox where ``../shared/data/an4`` is present.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from corpora import REPO, shared_corpus

from snn_asr.dataio import DataError, read_manifest

sys.path.insert(0, str(REPO / "recipes" / "AN4"))
from an4_prepare import prepare_an4, read_transcription  # noqa: E402

TRAIN = {
    "fash": ["an251-fash-b", "an253-fash-b"],
    "fbbh": ["an86-fbbh-b"],
    "mgah": ["an1-mgah-b", "cen1-mgah-b"],
}
TEST = {"fcaw": ["an406-fcaw-b"]}
WORDS = ["YES", "GO", "U M N Y H SIX", "H I N I C H", "ENTER SIX", "RUBOUT G M E F THREE NINE"]


def write_audio(path: Path, kind: str, seconds: float = 0.5, rate: int = 16000) -> None:
    samples = (np.sin(np.arange(int(seconds * rate)) * 0.05) * 8000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "raw":
        path.write_bytes(samples.astype(">i2").tobytes())
    else:
        sf.write(path, samples, rate, format="NIST" if kind == "sph" else "WAV", subtype="PCM_16")


def an4_tree(root: Path, kind: str = "wav", nested: bool = False) -> Path:
    """An AN4 tree in ``kind``'s layout: 5 training utterances of 3 speakers, 1 test utterance."""
    base = root / "an4" if nested else root
    words = iter(WORDS)
    for listing, folder, speakers, marks in (
        ("an4_train.transcription", "an4_clstk", TRAIN, ("<s> ", " </s>")),
        ("an4_test.transcription", "an4test_clstk", TEST, ("", "")),
    ):
        lines = []
        for speaker, utterances in speakers.items():
            for utt in utterances:
                write_audio(base / "wav" / folder / speaker / f"{utt}.{kind}", kind)
                lines.append(f"{marks[0]}{next(words)}{marks[1]} ({utt})")
        (base / "etc").mkdir(parents=True, exist_ok=True)
        (base / "etc" / listing).write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("kind,nested", [("wav", False), ("sph", True), ("raw", True)])
def test_every_layout_gives_the_same_manifests(tmp_path, kind, nested):
    data = an4_tree(tmp_path / "data", kind, nested)
    out = prepare_an4(data, tmp_path / "save", dev_utterances=2)
    train, dev, test = (read_manifest(out[split]) for split in ("train", "dev", "test"))
    assert list(dev) == ["an251-fash-b", "an253-fash-b"]  # the first of the list sorted by speaker
    assert list(train) == ["an86-fbbh-b", "an1-mgah-b", "cen1-mgah-b"]
    assert test["an406-fcaw-b"]["wrd"] == "RUBOUT G M E F THREE NINE" and dev["an251-fash-b"]["wrd"] == "YES"
    assert {row["spk_id"] for row in train.values()} == {"fbbh", "mgah"}
    for row in [*train.values(), *test.values()]:
        assert float(row["duration"]) == 0.5 and Path(row["wav"]).is_file()
        assert Path(row["wav"]).suffix == (".sph" if kind == "sph" else ".wav")  # raw: converted once
        assert sf.info(row["wav"]).samplerate == 16000


def test_transcription_lines_with_and_without_sentence_marks(tmp_path):
    path = tmp_path / "an4_test.transcription"
    path.write_text("<s> YES </s> (an251-fash-b)\nRUBOUT G M (an406-fcaw-b)\n")
    assert read_transcription(path) == {"an251-fash-b": "YES", "an406-fcaw-b": "RUBOUT G M"}


@pytest.mark.parametrize(
    "damage,expected",
    [
        ("no data", "AN4 data_folder '{data}/missing' not found"),
        ("bad line", "an4_train.transcription' line 2: expected '<s> WORDS </s> (anNNN-speaker-b)'"),
        ("twice", "an4_train.transcription' line 2: utterance an251-fash-b appears twice"),
        ("no audio", "utterance an86-fbbh-b has no audio file"),
        ("8 kHz", "an1-mgah-b.wav"),
        ("no etc", "AN4 etc folder"),
    ],
)
def test_bad_data_is_one_line_naming_the_file(tmp_path, damage, expected):
    data = an4_tree(tmp_path / "data")
    listing = data / "etc" / "an4_train.transcription"
    lines = listing.read_text().splitlines()
    folder = data
    if damage == "no data":
        folder = data / "missing"
    elif damage == "bad line":
        listing.write_text("\n".join([lines[0], "YES an253-fash-b", *lines[2:]]) + "\n")
    elif damage == "twice":
        listing.write_text("\n".join([lines[0], lines[0], *lines[2:]]) + "\n")
    elif damage == "no audio":
        (data / "wav" / "an4_clstk" / "fbbh" / "an86-fbbh-b.wav").unlink()
    elif damage == "8 kHz":
        write_audio(data / "wav" / "an4_clstk" / "mgah" / "an1-mgah-b.wav", "wav", rate=8000)
    elif damage == "no etc":
        shutil.rmtree(data / "etc")
    with pytest.raises(DataError) as err:
        prepare_an4(folder, tmp_path / "save", dev_utterances=2)
    message = str(err.value)
    assert expected.format(data=data) in message and "\n" not in message, message
    if damage == "8 kHz":
        assert "16000" in message and "sox" in message


def test_real_an4_gives_espnets_splits(tmp_path):
    an4 = shared_corpus("an4")
    out = prepare_an4(an4, tmp_path / "save")
    rows = {split: read_manifest(path) for split, path in out.items()}
    assert [len(rows[s]) for s in ("train", "dev", "test")] == [848, 100, 130]
    dev_speakers = sorted({r["spk_id"] for r in rows["dev"].values()})
    assert dev_speakers == ["fash", "fbbh", "fclc", "fejs", "ffmm", "fjam", "fjdn", "fjmd"]
    assert not {r["spk_id"] for r in rows["test"].values()} & {r["spk_id"] for r in rows["train"].values()}


def test_real_an4_files_read_alike_in_all_three_layouts(tmp_path):
    """A few real AN4 recordings, converted by sox to NIST SPHERE and to headerless big-endian raw."""
    an4 = shared_corpus("an4")
    keep = {"an4_train.transcription": 6, "an4_test.transcription": 2}
    for kind in ("wav", "sph", "raw"):
        root = tmp_path / kind / "an4"
        (root / "etc").mkdir(parents=True)
        for listing, count in keep.items():
            lines = (an4 / "etc" / listing).read_text().splitlines()[:count]
            (root / "etc" / listing).write_text("\n".join(lines) + "\n")
            folder = "an4_clstk" if "train" in listing else "an4test_clstk"
            for line in lines:
                utt = line.rsplit("(", 1)[1].rstrip(")")
                source = an4 / "wav" / folder / utt.split("-")[1] / f"{utt}.wav"
                target = (root / "wav" / folder / utt.split("-")[1] / utt).with_suffix(f".{kind}")
                target.parent.mkdir(parents=True, exist_ok=True)
                raw = ["-t", "raw", "-e", "signed", "-b", "16", "-B"] if kind == "raw" else []
                subprocess.run(["sox", str(source), *raw, str(target)], check=True)
    manifests = {}
    for kind in ("wav", "sph", "raw"):
        out = prepare_an4(tmp_path / kind, tmp_path / f"save_{kind}", dev_utterances=2)
        manifests[kind] = {split: read_manifest(path) for split, path in out.items()}
    for kind in ("sph", "raw"):
        for split, rows in manifests["wav"].items():
            other = manifests[kind][split]
            assert list(other) == list(rows)
            assert [(r["wrd"], r["duration"]) for r in other.values()] == [
                (r["wrd"], r["duration"]) for r in rows.values()
            ]
            for utt, row in rows.items():
                assert np.array_equal(
                    sf.read(other[utt]["wav"], dtype="int16")[0], sf.read(row["wav"], dtype="int16")[0]
                )
