"""LibriSpeech data preparation on the real samples and on broken copies; shared audio/manifest helpers."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from corpora import LIBRISPEECH, REPO

sys.path.insert(0, str(REPO / "recipes" / "LibriSpeech"))

import librispeech_prepare as lp  # noqa: E402

from snn_asr import dataio  # noqa: E402
from snn_asr.dataio import AudioError, DataError, load_audio, read_manifest, write_manifest  # noqa: E402

SAMPLES = LIBRISPEECH  # four real test-clean utterances, in the repository
EXPECTED = {
    "1089-134686-0000": (
        10.435,
        "HE HOPED THERE WOULD BE STEW FOR DINNER TURNIPS AND CARROTS AND BRUISED POTATOES AND FAT MUTTON "
        "PIECES TO BE LADLED OUT IN THICK PEPPERED FLOUR FATTENED SAUCE",
    ),
    "1089-134686-0001": (3.275, "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM"),
    "1089-134691-0000": (2.085, "HE COULD WAIT NO LONGER"),
    "1089-134691-0001": (
        5.415,
        "FOR A FULL HOUR HE HAD PACED UP AND DOWN WAITING BUT HE COULD WAIT NO LONGER",
    ),
}


def prepare_test_clean(data_folder: Path, save: Path, **kwargs) -> dict[str, Path]:
    return lp.prepare_librispeech(
        data_folder, save, tr_splits=[], dev_splits=[], te_splits=["test-clean"], **kwargs
    )


def single_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.__cause__ is None
    return message


@pytest.mark.parametrize("manifest_format", ["csv", "json"])
def test_real_samples(tmp_path, manifest_format):
    from speechbrain.dataio.dataset import DynamicItemDataset

    out = prepare_test_clean(SAMPLES, tmp_path, manifest_format=manifest_format)
    assert list(out) == ["test-clean"] and out["test-clean"].suffix == f".{manifest_format}"
    rows = read_manifest(out["test-clean"])
    assert list(rows) == sorted(EXPECTED)
    for utt, (duration, words) in EXPECTED.items():
        row = rows[utt]
        assert row["duration"] == pytest.approx(duration, abs=1e-9)
        assert row["wrd"] == words and row["spk_id"] == "1089"
        assert Path(row["wav"]).is_absolute() and Path(row["wav"]).name == f"{utt}.flac"
        assert len(load_audio(row["wav"])) == round(duration * 16000)
    load = DynamicItemDataset.from_csv if manifest_format == "csv" else DynamicItemDataset.from_json
    dataset = load(out["test-clean"])
    assert dataset.data["1089-134691-0000"]["wrd"] == "HE COULD WAIT NO LONGER"
    assert dataset.data["1089-134691-0000"]["duration"] == pytest.approx(2.085)


def chapter(root: Path, name: str = "134686") -> Path:
    return root / "test-clean" / "1089" / name


@pytest.fixture
def samples(tmp_path) -> Path:
    root = tmp_path / "LibriSpeech"
    shutil.copytree(SAMPLES, root)
    return root


def test_skip_when_done_merge_and_select(samples, tmp_path, monkeypatch):
    dev = samples / "dev-clean" / "1089" / "999999"  # a copy of chapter 134691 as another chapter
    dev.mkdir(parents=True)
    for path in chapter(samples, "134691").iterdir():
        target = dev / path.name.replace("134691", "999999")
        target.write_bytes(path.read_bytes().replace(b"134691", b"999999"))
    kwargs = {"tr_splits": [], "dev_splits": ["dev-clean"], "te_splits": ["test-clean"]}
    out = lp.prepare_librispeech(samples, tmp_path / "s", merge_lst=["dev-clean", "test-clean"],
                                 merge_name="all.csv", **kwargs)  # fmt: skip
    assert list(out) == ["dev-clean", "test-clean", "dev", "all"]
    assert len(read_manifest(out["dev-clean"])) == 2 and len(read_manifest(out["all"])) == 6
    assert read_manifest(out["dev"]) == read_manifest(out["dev-clean"])
    stamp = {k: p.stat().st_mtime_ns for k, p in out.items()}

    def no_reading(*args, **kwargs):
        raise AssertionError("preparation should have been skipped")

    monkeypatch.setattr(lp, "audio_info", no_reading)
    lp.prepare_librispeech(samples, tmp_path / "s", merge_lst=["dev-clean", "test-clean"],
                           merge_name="all.csv", **kwargs)  # fmt: skip
    assert {k: p.stat().st_mtime_ns for k, p in out.items()} == stamp
    with pytest.raises(AssertionError, match="skipped"):  # other options: redone
        lp.prepare_librispeech(samples, tmp_path / "s", select_n_sentences=1, **kwargs)
    monkeypatch.undo()
    lp.prepare_librispeech(samples, tmp_path / "s", select_n_sentences=1, **kwargs)
    assert list(read_manifest(out["test-clean"])) == ["1089-134686-0000"]


TRANS, AUDIO0, AUDIO1 = "1089-134686.trans.txt", "1089-134686-0000.flac", "1089-134686-0001.flac"


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


@pytest.mark.parametrize(
    "damage, expected, names",
    [
        (lambda d: (d / AUDIO1).unlink(), "line 2: utterance 1089-134686-0001 has no audio file", TRANS),
        (lambda d: (d / TRANS).write_bytes(b"1089-134686-0000 HE HOPED\n1089-134686-0001 CAF\xc9\n"),
         "line 2: not valid UTF-8 (byte 0xc9 at column 21)", TRANS),
        (lambda d: (d / AUDIO1).write_bytes(b""), "zero-length file", AUDIO1),
        (lambda d: (d / TRANS).write_bytes(b""), "is a zero-length file", TRANS),
        (lambda d: (d / TRANS).unlink(), "not found, but", TRANS),
        (lambda d: truncate(d / AUDIO0, 9000), "truncated", AUDIO0),
        (lambda d: (d / TRANS).write_text("1089-134686-0000\n"), "expected '1089-134686-NNNN WORDS'", TRANS),
    ],
)  # fmt: skip
def test_bad_inputs_name_the_file(samples, tmp_path, damage, expected, names):
    damage(chapter(samples))
    with pytest.raises(DataError) as err:
        prepare_test_clean(samples, tmp_path)
    message = single_line(err)
    assert expected in message
    assert str(chapter(samples) / names) in message


def test_missing_folders(samples, tmp_path):
    with pytest.raises(DataError) as err:
        prepare_test_clean(tmp_path / "nowhere", tmp_path / "s")
    assert "not found" in single_line(err) and "make_librispeech_corpus.py" in str(err.value)
    with pytest.raises(DataError, match="split folder .*dev-clean' not found .*has: test-clean") as err:
        lp.prepare_librispeech(samples, tmp_path / "s", tr_splits=[], dev_splits=["dev-clean"], te_splits=[])
    single_line(err)


# --- snn_asr.dataio ------------------------------------------------------------------------------


def test_load_audio_resamples_and_downmixes(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    sf.write(tmp_path / "a.wav", stereo, 8000, subtype="PCM_16")
    mono = load_audio(tmp_path / "a.wav", sample_rate=None)
    assert mono.dtype == torch.float32 and mono.shape == (8000,)
    assert mono.abs().max() == pytest.approx(0.25, abs=1e-3)
    up = load_audio(tmp_path / "a.wav", 16000)
    assert up.shape == (16000,) and up.abs().max() == pytest.approx(0.25, abs=0.01)
    sf.write(tmp_path / "b.sph", np.zeros(1600, np.int16), 16000, format="NIST", subtype="PCM_16")
    assert load_audio(tmp_path / "b.sph").shape == (1600,)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "zero-length file"),
        (lambda p: p.write_bytes(b"RIFF....WAVEjunk" * 8), "not a readable audio file"),
        (lambda p: sf.write(p, np.zeros(0, np.int16), 16000, format="NIST"), "0 audio samples"),
        (lambda p: (sf.write(p, np.ones(8000, np.int16), 16000, format="NIST", subtype="PCM_16"),
                    p.write_bytes(p.read_bytes()[:5000])), "truncated (header declares 8000 samples"),
        (lambda p: (sf.write(p, np.ones(8000, np.int16), 16000, format="WAV", subtype="PCM_16"),
                    p.write_bytes(p.read_bytes()[:5000])), "truncated"),
        (lambda p: (sf.write(p, np.random.default_rng(0).normal(0, 0.1, 16000), 16000, format="FLAC"),
                    p.write_bytes(p.read_bytes()[:9000])), "truncated"),
    ],
)  # fmt: skip
def test_audio_errors_are_one_line(tmp_path, make, expected):
    path = tmp_path / "x.audio"
    make(path)
    for reader in (load_audio, dataio.audio_info):
        with pytest.raises(AudioError) as err:
            reader(path)
        message = single_line(err)
        assert expected in message and str(path) in message
        assert isinstance(err.value, ValueError)


def test_write_manifest_csv_json_and_errors(tmp_path):
    rows = [
        {"ID": "b", "duration": 1.25, "wav": "/d/b.wav", "wrd": 'SAY "HI", YOU'},
        {"ID": "a", "duration": 2, "wav": "/d/a.wav", "wrd": "X"},
    ]
    from speechbrain.dataio.dataio import load_data_csv, load_data_json

    csv = write_manifest(rows, tmp_path / "m.csv")
    assert csv.read_text().splitlines()[0] == "ID,duration,wav,wrd"
    assert load_data_csv(csv)["b"] == {"duration": 1.25, "wav": "/d/b.wav", "wrd": 'SAY "HI", YOU'}
    assert load_data_json(write_manifest(rows, tmp_path / "m.json"))["a"]["duration"] == 2
    with pytest.raises(DataError, match="Duplicate utterance ID 'b'"):
        write_manifest(rows + rows[:1], tmp_path / "d.csv")
    with pytest.raises(DataError, match=r"contains '\$'"):
        write_manifest([{"ID": "c", "duration": 1, "wav": "/data/$HOME/c.wav"}], tmp_path / "v.csv")
    assert not (tmp_path / "v.csv").exists()
    assert dataio.read_text_lines(csv)[1].startswith("b,1.25,")
