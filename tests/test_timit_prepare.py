"""TIMIT data preparation: layout, splits, phone mapping, skip-when-done and errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "recipes" / "TIMIT"))

import timit_prepare as tp  # noqa: E402

from snn_asr.dataio import AudioError, DataError, read_manifest  # noqa: E402

# Kaldi's egs/timit/s5/conf/phones.60-48-39.map (Lee & Hon): 61 phone -> 48 -> 39; q is deleted.
STANDARD_TABLE = """
aa aa aa; ae ae ae; ah ah ah; ao ao aa; aw aw aw; ax ax ah; ax-h ax ah; axr er er; ay ay ay; b b b;
bcl vcl sil; ch ch ch; d d d; dcl vcl sil; dh dh dh; dx dx dx; eh eh eh; el el l; em m m; en en n;
eng ng ng; epi epi sil; er er er; ey ey ey; f f f; g g g; gcl vcl sil; h# sil sil; hh hh hh; hv hh hh;
ih ih ih; ix ix ih; iy iy iy; jh jh jh; k k k; kcl cl sil; l l l; m m m; n n n; ng ng ng; nx n n;
ow ow ow; oy oy oy; p p p; pau sil sil; pcl cl sil; q; r r r; s s s; sh sh sh; t t t; tcl cl sil;
th th th; uh uh uh; uw uw uw; ux uw uw; v v v; w w w; y y y; z z z; zh zh sh
"""
STANDARD = {row.split()[0]: row.split()[1:] for row in STANDARD_TABLE.replace("\n", " ").split(";")}

TRAIN_SPEAKERS = {"dr1": ["fcjf0", "mdpk0"], "dr4": ["mtest0"]}  # "mtest0": a speaker named like a split
OTHER_TEST_SPEAKERS = {"dr2": ["mxyz0"], "dr5": ["ftrn0"]}
PHN = [(0, 300, "h#"), (300, 500, "q"), (500, 700, "ax-h"), (700, 800, "bcl"), (800, 900, "b"),
       (900, 1100, "ix"), (1100, 1300, "pau"), (1300, 1500, "zh"), (1500, 1600, "h#")]  # fmt: skip


def write_utterance(folder: Path, utt: str, upper: bool, phn=PHN, samples: int = 1600) -> None:
    """A silent NIST SPHERE .WAV with .PHN/.WRD/.TXT, as in TIMIT."""

    def name(ext: str) -> str:
        return f"{utt}.{ext}".upper() if upper else f"{utt}.{ext}"

    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / name("wav"), np.zeros(samples, np.int16), 16000, format="NIST", subtype="PCM_16")
    (folder / name("phn")).write_text("".join(f"{a} {b} {p}\n" for a, b, p in phn))
    (folder / name("wrd")).write_text("300 900 a\n900 1500 big\n")
    (folder / name("txt")).write_text(f"0 {samples} A big.\n")


def fake_timit(root: Path, upper: bool = True, dev=None, core=None) -> Path:
    """A TIMIT-layout tree of tiny silent files: SA1, SI1, SX1 per speaker."""
    dev = sorted(tp.DEV_SPEAKERS) if dev is None else dev
    core = sorted(tp.CORE_TEST_SPEAKERS) if core is None else core
    layout = {("train", d): s for d, s in TRAIN_SPEAKERS.items()}
    for k, speaker in enumerate(dev + core):
        layout.setdefault(("test", f"dr{k % 8 + 1}"), []).append(speaker)
    for d, s in OTHER_TEST_SPEAKERS.items():
        layout.setdefault(("test", d), []).extend(s)
    for (split, dialect), speakers in layout.items():
        for speaker in speakers:
            folder = root / split / dialect / speaker
            if upper:
                folder = root / split.upper() / dialect.upper() / speaker.upper()
            for utt in ("sa1", "si1", "sx1"):
                write_utterance(folder, utt, upper)
    return root


@pytest.fixture(scope="module")
def timit(tmp_path_factory) -> Path:
    return fake_timit(tmp_path_factory.mktemp("timit") / "TIMIT")


def test_standard_phone_tables():
    assert len(tp.PHONES_61) == 61 and set(tp.PHONES_61) == set(STANDARD)
    assert len(tp.PHONES_48) == 48 and len(tp.PHONES_39) == 39
    for phone, (to48, to39) in ((p, v) for p, v in STANDARD.items() if v):
        assert tp.MAP_61_TO_48[phone] == to48, phone
        assert tp.MAP_61_TO_39[phone] == to39, phone
        assert tp.MAP_48_TO_39[to48] == to39, phone
    assert tp.MAP_61_TO_48["q"] is None and tp.MAP_61_TO_39["q"] is None
    assert set(tp.MAP_48_TO_39) == set(tp.PHONES_48)


def test_map_phones_spot_checks():
    assert tp.map_phones(["h#", "q", "ax-h", "bcl", "b", "ix", "pau", "zh", "h#"], 48) == [
        "sil", "ax", "vcl", "b", "ix", "sil", "zh", "sil"
    ]  # fmt: skip
    assert tp.map_to_39(["sil", "ax", "vcl", "b", "ix", "sil", "zh", "sil"]) == [
        "sil", "ah", "sil", "b", "ih", "sil", "sh", "sil"
    ]  # fmt: skip
    assert tp.map_to_39(["sil", "cl", "k", "ao", "el", "en", "epi", "sil"]) == [
        "sil",
        "k",
        "aa",
        "l",
        "n",
        "sil",
    ]
    assert tp.map_to_39(["pau", "tcl", "t", "nx", "ux"]) == ["sil", "t", "n", "uw"]  # 61-set labels too
    assert tp.map_phones(["h#", "q", "h#"], 61) == ["h#", "q", "h#"]
    with pytest.raises(KeyError):
        tp.map_phones(["xx"], 48)


def test_splits_and_speaker_counts(timit, tmp_path):
    out = tp.prepare_timit(timit, tmp_path)
    data = {split: read_manifest(path) for split, path in out.items()}
    speakers = {split: {row["spk_id"] for row in rows.values()} for split, rows in data.items()}
    assert speakers["train"] == {"fcjf0", "mdpk0", "mtest0"}
    assert speakers["dev"] == tp.DEV_SPEAKERS and len(speakers["dev"]) == 50
    assert speakers["test"] == tp.CORE_TEST_SPEAKERS and len(speakers["test"]) == 24
    assert all(len(rows) == 2 * len(speakers[split]) for split, rows in data.items())  # SA1 excluded
    row = data["dev"]["faks0_si1"]
    assert row["wav"].startswith(str(timit / "TEST" / "DR")) and row["wav"].endswith("/FAKS0/SI1.WAV")
    assert row["duration"] == pytest.approx(0.1)
    assert row["phn"] == "sil ax vcl b ix sil zh sil" and row["wrd"] == "a big"
    full = read_manifest(tp.prepare_timit(timit, tmp_path / "full", test_set="full", splits=["test"])["test"])
    assert {r["spk_id"] for r in full.values()} == tp.CORE_TEST_SPEAKERS | {"mxyz0", "ftrn0"}


@pytest.mark.parametrize("upper", [True, False])
def test_case_and_a_data_folder_named_test(tmp_path, upper):
    root = fake_timit(tmp_path / "test" / "timit_test_train", upper, dev=["faks0", "mreb0"], core=["mdab0"])
    out = tp.prepare_timit(root, tmp_path / "save", uppercase=None)
    data = {split: read_manifest(path) for split, path in out.items()}
    assert sorted(data["train"]) == [f"{s}_{u}" for s in ("fcjf0", "mdpk0", "mtest0") for u in ("si1", "sx1")]
    assert sorted(data["dev"]) == ["faks0_si1", "faks0_sx1", "mreb0_si1", "mreb0_sx1"]
    assert sorted(data["test"]) == ["mdab0_si1", "mdab0_sx1"]
    with pytest.raises(DataError, match=f"uppercase={not upper}"):
        tp.prepare_timit(root, tmp_path / "save2", uppercase=not upper)


def test_manifests_load_in_speechbrain(timit, tmp_path):
    from speechbrain.dataio.dataset import DynamicItemDataset

    csv = tp.prepare_timit(timit, tmp_path / "csv", splits=["dev"])["dev"]
    json = tp.prepare_timit(timit, tmp_path / "json", splits=["dev"], manifest_format="json")["dev"]
    for dataset in (DynamicItemDataset.from_csv(csv), DynamicItemDataset.from_json(json)):
        assert len(dataset) == 100
        assert dataset.data["faks0_sx1"]["phn"] == "sil ax vcl b ix sil zh sil"


def test_skip_when_done_and_redo_when_options_change(timit, tmp_path, monkeypatch):
    out = tp.prepare_timit(timit, tmp_path)
    stamp = {split: path.stat().st_mtime_ns for split, path in out.items()}

    def no_reading(*args, **kwargs):
        raise AssertionError("preparation should have been skipped")

    monkeypatch.setattr(tp, "audio_info", no_reading)
    assert tp.prepare_timit(timit, tmp_path) == out
    assert {split: path.stat().st_mtime_ns for split, path in out.items()} == stamp
    with pytest.raises(AssertionError, match="skipped"):
        tp.prepare_timit(timit, tmp_path, phn_set=39)  # other options: redone
    monkeypatch.undo()
    tp.prepare_timit(timit, tmp_path, phn_set=39)
    assert read_manifest(out["dev"])["faks0_si1"]["phn"] == "sil ah sil b ih sil sh sil"
    out["train"].unlink()  # a missing output: redone
    tp.prepare_timit(timit, tmp_path, phn_set=39)
    assert out["train"].is_file()
    assert tp.prepare_timit(tmp_path / "nowhere", tmp_path, skip_prep=True) == out


def single_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_folder_errors(tmp_path):
    with pytest.raises(DataError) as err:
        tp.prepare_timit(tmp_path / "no_timit", tmp_path / "save")
    message = single_line(err)
    assert str(tmp_path / "no_timit") in message and "tools/make_mini_timit.py" in message
    (tmp_path / "half" / "TRAIN").mkdir(parents=True)
    with pytest.raises(DataError, match="has no TEST/") as err:
        tp.prepare_timit(tmp_path / "half", tmp_path / "save")
    single_line(err)


def broken_copy(tmp_path: Path) -> tuple[Path, Path]:
    root = fake_timit(tmp_path / "TIMIT", dev=["faks0"], core=["mdab0"])
    return root, root / "TEST" / "DR1" / "FAKS0"


@pytest.mark.parametrize(
    "damage, error, expected",
    [
        (lambda d: (d / "SI1.WAV").write_bytes(b"not audio at all" * 20), AudioError, "not a readable audio"),
        (lambda d: (d / "SI1.WAV").write_bytes((d / "SI1.WAV").read_bytes()[:1500]), AudioError, "truncated"),
        (lambda d: (d / "SI1.WAV").write_bytes(b""), AudioError, "zero-length"),
        (lambda d: (d / "SI1.PHN").write_text(""), DataError, "is empty"),
        (
            lambda d: (d / "SI1.PHN").write_text("0 800 h#\n800 1600 xx\n"),
            DataError,
            "unknown phone label 'xx'",
        ),
        (lambda d: (d / "SI1.PHN").write_text("0 800\n"), DataError, "expected 'start end phone'"),
        (lambda d: (d / "SI1.PHN").unlink(), DataError, "is missing"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path, damage, error, expected):
    root, speaker = broken_copy(tmp_path)
    damage(speaker)
    with pytest.raises(error) as err:
        tp.prepare_timit(root, tmp_path / "save")
    message = single_line(err)
    assert expected in message
    assert str(speaker / "SI1.") in message  # names the file
    assert err.value.__cause__ is None  # no raw soundfile traceback attached


def test_unknown_label_names_the_line(tmp_path):
    root, speaker = broken_copy(tmp_path)
    (speaker / "SX1.PHN").write_text("0 800 h#\n800 1600 ZZ\n")
    with pytest.raises(DataError, match=r"SX1.PHN' line 2: unknown phone label 'zz'"):
        tp.prepare_timit(root, tmp_path / "save")


def test_no_dev_speakers_is_a_clear_error(tmp_path):
    root = fake_timit(tmp_path / "TIMIT", dev=[], core=["mdab0"])
    with pytest.raises(DataError, match="No dev utterances") as err:
        tp.prepare_timit(root, tmp_path / "save")
    assert "make_mini_timit" in single_line(err)
