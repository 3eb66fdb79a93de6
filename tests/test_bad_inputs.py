"""Bad inputs tried through the recipes: each ends in one line naming the file (or option) and the fix.

The rule: corrupt or empty audio, a wrong sample rate, broken transcripts, a missing data
folder and bad overrides stop ``recipes/*/train.py`` with exit status 1 and a last stderr
line ``error: ...``, never a traceback. LibriSpeech audio that no transcript line names is
skipped with a warning instead (see ``recipes/LibriSpeech/librispeech_prepare.py``).

The recipe runs (``RECIPE_CASES``) start together in a module fixture, two at a time: each
imports torch and SpeechBrain (about 5 s) and fails in data preparation, before training.
More cases are checked at the function level below. The missing TIMIT data folder and the
missing ``--data_folder`` of TIMIT are run in ``tests/test_timit_recipe.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "recipes" / "TIMIT"), str(REPO / "recipes" / "LibriSpeech")]

import librispeech_prepare as lp  # noqa: E402
import timit_prepare as tp  # noqa: E402

from snn_asr.dataio import AudioError, DataError, audio_info  # noqa: E402
from snn_asr.recipes.cli import RecipeError, check_overrides, load_recipe, main_guard  # noqa: E402

# one train, one dev and one core-test speaker
TIMIT_SPEAKERS = (("TRAIN", "DR1", "FCJF0"), ("TEST", "DR1", "FAKS0"), ("TEST", "DR2", "MDAB0"))
LIBRI_SPEAKERS = (("train-clean-100", "19"), ("dev-clean", "84"), ("test-clean", "61"))
TIMIT_YAML = REPO / "recipes" / "TIMIT" / "hparams" / "snn.yaml"
LIBRI_YAML = REPO / "recipes" / "LibriSpeech" / "hparams" / "snn.yaml"


def noise(samples: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, 0.1, samples) * 32767).astype(np.int16)


def make_timit(root: Path) -> Path:
    """One train, one dev and one core-test speaker, two 0.2 s utterances each, in TIMIT's layout."""
    for split, dialect, speaker in TIMIT_SPEAKERS:
        folder = root / split / dialect / speaker
        folder.mkdir(parents=True)
        for utt in ("SI1", "SX1"):
            sf.write(folder / f"{utt}.WAV", noise(3200), 16000, format="NIST", subtype="PCM_16")
            (folder / f"{utt}.PHN").write_text("0 800 h#\n800 2400 sh\n2400 3200 h#\n")
            (folder / f"{utt}.WRD").write_text("800 2400 she\n")
            (folder / f"{utt}.TXT").write_text("0 3200 She.\n")
    return root


def make_librispeech(root: Path) -> Path:
    """train-clean-100, dev-clean and test-clean: one chapter of two 0.2 s utterances each."""
    for split, speaker in LIBRI_SPEAKERS:
        folder = root / split / speaker / "100"
        folder.mkdir(parents=True)
        for i in range(2):
            sf.write(folder / f"{speaker}-100-{i:04d}.flac", noise(3200, i), 16000, format="FLAC")
        (folder / f"{speaker}-100.trans.txt").write_text(
            f"{speaker}-100-0000 HELLO WORLD\n{speaker}-100-0001 GOOD MORNING\n"
        )
    return root


def streamed_flac(path: Path, samples: int) -> None:
    """A FLAC whose header gives no length, as ``sox -n out.flac trim 0 0`` writes for 0 samples."""
    sf.write(path, noise(max(samples, 16)), 16000, format="FLAC")
    data = bytearray(path.read_bytes())
    end = 4
    while True:  # metadata blocks: 1 byte (last flag, type), 3 bytes length
        last, length = data[end] >> 7, int.from_bytes(data[end + 1 : end + 4], "big")
        end += 4 + length
        if last:
            break
    data[8 + 13] &= 0xF0  # STREAMINFO's 36-bit total_samples := 0 ("unknown")
    data[8 + 14 : 8 + 18] = bytes(4)
    path.write_bytes(data if samples else data[:end])


DEV_WAV = Path("TEST/DR1/FAKS0/SI1.WAV")
DEV_PHN = Path("TEST/DR1/FAKS0/SI1.PHN")
TRAIN_WAV = Path("TRAIN/DR1/FCJF0/SX1.WAV")
DEV_CHAPTER = Path("dev-clean/84/100")
DEV_TRANS = DEV_CHAPTER / "84-100.trans.txt"
DEV_FLAC = DEV_CHAPTER / "84-100-0001.flac"

# name: (recipe, damage of a fresh corpus (None: no --data_folder), extra options, file named, fix words)
CASES: dict[str, tuple[str, Callable[[Path], object] | None, list[str], Path | None, str]] = {
    "timit corrupt wav": (
        "TIMIT",
        lambda r: (r / DEV_WAV).write_bytes(b"not audio " * 50),
        [],
        DEV_WAV,
        "re-copy or re-extract it",
    ),
    "timit empty phn": ("TIMIT", lambda r: (r / DEV_PHN).write_text(""), [], DEV_PHN, "restore it"),
    "timit unknown phone": (
        "TIMIT",
        lambda r: (r / DEV_PHN).write_text("0 800 h#\n800 3200 xx\n"),
        [],
        DEV_PHN,
        "fix the label",
    ),
    "timit 8 kHz wav": (
        "TIMIT",
        lambda r: sf.write(r / TRAIN_WAV, noise(1600), 8000, format="NIST", subtype="PCM_16"),
        [],
        TRAIN_WAV,
        "resample it (e.g. sox -t sph IN -t sph -r 16000 OUT",
    ),
    "libri line without audio": (
        "LibriSpeech",
        lambda r: (r / DEV_FLAC).unlink(),
        [],
        DEV_TRANS,
        "restore the audio, or delete the line",
    ),
    "libri non-utf8 line": (
        "LibriSpeech",
        lambda r: (r / DEV_TRANS).write_bytes(b"84-100-0000 HELLO\n84-100-0001 CAF\xc9\n"),
        [],
        DEV_TRANS,
        "line 2: not valid UTF-8 (byte 0xc9 at column 16); re-save the file as UTF-8",
    ),
    "libri 0-byte flac": (
        "LibriSpeech",
        lambda r: (r / DEV_FLAC).write_bytes(b""),
        [],
        DEV_FLAC,
        "zero-length file (0 bytes)",
    ),
    "libri 0-sample flac": (
        "LibriSpeech",
        lambda r: streamed_flac(r / DEV_FLAC, 0),
        [],
        DEV_FLAC,
        "holds 0 audio samples; re-copy",
    ),
    "libri 8 kHz flac": (
        "LibriSpeech",
        lambda r: sf.write(r / DEV_FLAC, noise(1600), 8000, format="FLAC"),
        [],
        DEV_FLAC,
        "resample it (e.g. sox IN -r 16000 OUT",
    ),
    "libri no data_folder": (
        "LibriSpeech",
        None,
        [],
        None,
        "pass --data_folder /path/to/LibriSpeech (holding train-clean-100/",
    ),
    "override not an integer": (
        "TIMIT",
        lambda r: None,
        ["--hidden_size", "abc"],
        None,
        "pass e.g. --hidden_size 550",
    ),
    "override unknown key": (
        "TIMIT",
        lambda r: None,
        ["--hiden_size", "8"],
        None,
        "did you mean --hidden_size?",
    ),
    "override bad annealing metric": (
        "TIMIT",
        lambda r: None,
        ["--lr_annealing_metric", "wer"],
        None,
        "pass --lr_annealing_metric loss (or error_rate)",
    ),
    # skipped with a warning; then the default vocab_size is too large for four training sentences
    "libri audio without a line": (
        "LibriSpeech",
        lambda r: shutil.copy(r / DEV_FLAC, r / DEV_CHAPTER / "84-100-0002.flac"),
        [],
        DEV_CHAPTER / "84-100-0002.flac",
        "Skipped 1 .flac file(s)",
    ),
}
# Run through the recipe (about 5 s each): one of each kind; every data case also runs below at the
# function level, through the preparation the recipe calls.
RECIPE_RUNS = [
    "timit corrupt wav",
    "timit unknown phone",
    "libri line without audio",
    "libri 0-sample flac",
    "libri no data_folder",
    "override not an integer",
    "override bad annealing metric",
    "libri audio without a line",
]
DATA_CASES = [name for name, case in CASES.items() if case[1] is not None and not case[2]]


def run_recipe(name: str, base: Path) -> tuple[subprocess.CompletedProcess, Path]:
    recipe, damage, extra, _, _ = CASES[name]
    base.mkdir(parents=True)
    cmd = [sys.executable, str(REPO / "recipes" / recipe / "train.py"), "hparams/snn.yaml"]
    data = base / "data"
    if damage is not None:
        (make_timit if recipe == "TIMIT" else make_librispeech)(data)
        damage(data)
        cmd += ["--data_folder", str(data)]
    cmd += ["--output_folder", str(base / "out"), "--number_of_epochs", "1", "--beam_size", "0"]
    if recipe == "LibriSpeech":
        cmd += ["--test_splits", "[test-clean]", "--ngram_order", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd + extra, cwd=base, env=env, capture_output=True, text=True, timeout=300)
    return proc, data


@pytest.fixture(scope="module")
def recipe_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    root = tmp_path_factory.mktemp("bad_inputs")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_recipe, name, root / f"case{i}") for i, name in enumerate(RECIPE_RUNS)
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", [name for name in RECIPE_RUNS if name != "libri audio without a line"])
def test_recipe_fails_in_one_line_naming_the_file_and_fix(recipe_runs, name):
    proc, data = recipe_runs[name]
    *_, named, fix = CASES[name]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fix in last, last
    if named is not None:
        assert repr(str(data / named)) in last, last


def test_recipe_skips_unlabeled_audio_with_a_warning(recipe_runs):
    proc, data = recipe_runs["libri audio without a line"]
    *_, named, fix = CASES["libri audio without a line"]
    warnings = [line for line in proc.stdout.splitlines() if fix in line]
    assert len(warnings) == 1 and repr(str(data / named)) in warnings[0]
    assert "add a line '84-100-0002 WORDS' for each, or delete them" in warnings[0]
    # the preparation went on; the default vocab_size is then too large for 4 training sentences
    assert (data.parent / "out" / "save" / "dev-clean.csv").is_file()
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert last.startswith("error: --vocab_size 256 is too large for the training transcripts"), last
    assert "pass --vocab_size" in last


# --- the same and more at the function level ---------------------------------------------------


@pytest.mark.parametrize("name", [name for name in DATA_CASES if name != "libri audio without a line"])
def test_preparation_fails_in_one_line_naming_the_file_and_fix(tmp_path, name):
    recipe, damage, _, named, fix = CASES[name]
    data = (make_timit if recipe == "TIMIT" else make_librispeech)(tmp_path / "data")
    damage(data)
    with pytest.raises(DataError) as err:  # as the recipes call them, with their default splits
        if recipe == "TIMIT":
            tp.prepare_timit(data, tmp_path / "save")
        else:
            lp.prepare_librispeech(
                data, tmp_path / "save", ["train-clean-100"], ["dev-clean"], ["test-clean"]
            )
    assert fix in single_line(err, data / named)


def test_bad_overrides_through_load_recipe(tmp_path):
    for name in ("override not an integer", "override unknown key"):
        *_, extra, _, fix = CASES[name]
        with pytest.raises(RecipeError) as err:
            load_recipe(
                ["hparams/snn.yaml", "--data_folder", str(tmp_path), *extra], REPO / "recipes" / "TIMIT"
            )
        assert fix in str(err.value) and "\n" not in str(err.value)


def single_line(err: pytest.ExceptionInfo, path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.__cause__ is None
    assert repr(str(path)) in message
    return message


@pytest.mark.parametrize(
    "write, expected",
    [
        (lambda p: sf.write(p, noise(1600), 8000, format="FLAC"),
         "sample rate 8000 Hz, but the recipe expects 16000 Hz; resample it (e.g. sox IN -r 16000 OUT"),
        (lambda p: sf.write(p, np.zeros((3200, 2), np.int16), 16000, format="FLAC"),
         "2 channels, but the recipe expects 1; mix it down (e.g. sox IN -c 1 OUT"),
        (lambda p: streamed_flac(p, 0), "the file holds 0 audio samples"),
        (lambda p: streamed_flac(p, 5000), "its header gives no length"),
    ],
)  # fmt: skip
def test_librispeech_format_errors(tmp_path, write, expected):
    root = make_librispeech(tmp_path / "LibriSpeech")
    write(root / DEV_FLAC)
    with pytest.raises(AudioError) as err:
        lp.prepare_librispeech(root, tmp_path / "save", tr_splits=[], dev_splits=["dev-clean"], te_splits=[])
    assert expected in single_line(err, root / DEV_FLAC)


def test_librispeech_sample_rate_none_accepts_any(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    sf.write(root / DEV_FLAC, noise(1600), 8000, format="FLAC")
    out = lp.prepare_librispeech(
        root, tmp_path / "s", tr_splits=[], dev_splits=["dev-clean"], te_splits=[], sample_rate=None
    )
    assert out["dev-clean"].read_text().count("\n") == 3


def test_librispeech_unlabeled_audio_counted_per_split(tmp_path, caplog):
    root = make_librispeech(tmp_path / "LibriSpeech")
    for i in (2, 3):
        shutil.copy(root / DEV_FLAC, root / DEV_CHAPTER / f"84-100-000{i}.flac")
    with caplog.at_level(logging.WARNING):
        out = lp.prepare_librispeech(
            root, tmp_path / "s", tr_splits=[], dev_splits=["dev-clean"], te_splits=[]
        )
    assert out["dev-clean"].read_text().count("\n") == 3  # header + the 2 labelled utterances
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage().startswith(f"Skipped 2 .flac file(s) in {str(root / 'dev-clean')!r}")
    assert repr(str(root / DEV_CHAPTER / "84-100-0002.flac")) in record.getMessage()


def test_librispeech_splits_given_as_a_string(tmp_path):
    root = make_librispeech(tmp_path / "LibriSpeech")
    with pytest.raises(DataError, match=r"te_splits must be a list .* --test_splits '\[test-clean\]'"):
        lp.prepare_librispeech(root, tmp_path / "s", tr_splits=[], dev_splits=[], te_splits="test-clean")
    expected = r"split folder .*test-other' not found .* --test_splits '\[test-clean\]'"
    with pytest.raises(DataError, match=expected):
        lp.prepare_librispeech(root, tmp_path / "s", tr_splits=[], dev_splits=[], te_splits=["test-other"])


def test_timit_wrong_rate_and_stereo(tmp_path):
    root = make_timit(tmp_path / "TIMIT")
    sf.write(root / TRAIN_WAV, noise(1600), 8000, format="NIST", subtype="PCM_16")
    with pytest.raises(AudioError) as err:
        tp.prepare_timit(root, tmp_path / "save")
    assert "sample rate 8000 Hz" in single_line(err, root / TRAIN_WAV)
    sf.write(root / TRAIN_WAV, np.zeros((1600, 2), np.int16), 16000, format="NIST", subtype="PCM_16")
    with pytest.raises(AudioError) as err:
        tp.prepare_timit(root, tmp_path / "save")
    assert "2 channels" in single_line(err, root / TRAIN_WAV)


def test_unknown_length_flac_info(tmp_path):
    streamed_flac(tmp_path / "a.flac", 0)
    with pytest.raises(AudioError, match="0 audio samples"):
        audio_info(tmp_path / "a.flac")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ("hidden_size: abc", "--hidden_size abc: expected an integer (snn.yaml has hidden_size: 550); "
                             "pass e.g. --hidden_size 550"),
        ("hidden_size: 8.5", "expected an integer"),
        ("hiden_size: 8",
         "unknown option --hiden_size: snn.yaml has no key 'hiden_size'; did you mean --hidden_size?"),
        ("zzzz: 1", "options are the keys of"),
        ("hidden_size: 8\nhidden_size: 9", "--hidden_size is given twice ('8' and '9'); pass it once"),
        ("lr: [1,", "--lr [1,: not valid YAML"),
        ("skip_prep: yes", "--skip_prep yes: expected true or false"),
        ("test_splits: test-clean",
         "--test_splits test-clean: expected a list (snn.yaml has test_splits: [test-clean, test-other]); "
         "pass e.g. --test_splits '[test-clean, test-other]'"),
        ("hidden_size:", "--hidden_size has no value; pass e.g. --hidden_size 550"),
        ("data/LibriSpeech", "unexpected argument 'data/LibriSpeech'"),
    ],
)  # fmt: skip
def test_bad_overrides(overrides, expected):
    with pytest.raises(RecipeError) as err:
        check_overrides(overrides, LIBRI_YAML if "splits" in overrides else TIMIT_YAML)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_good_overrides_pass():
    text = "lr: 1e-3\nhidden_size: 8\nlr_weight: null\nbatch_size: 2\nsorting: random\noutput_folder: !ref x"
    with pytest.raises(RecipeError, match="lr_weight"):  # LibriSpeech's key, not TIMIT's
        check_overrides(text, TIMIT_YAML)
    text = text.replace("lr_weight", "lm_weight")
    assert [key for key, _ in check_overrides(text, TIMIT_YAML)][:3] == ["lr", "hidden_size", "lm_weight"]
    assert check_overrides("test_splits: [test-clean]\nskip_prep: true\nlm_weight: 1", LIBRI_YAML)
    assert check_overrides("", TIMIT_YAML) == []


@pytest.mark.parametrize(
    "message, expected",
    [
        ("INTERNAL: src/trainer_interface.cc(744) [...] Vocabulary size too high (256). Please set it to a "
         "value <= 12.",
         "error: --vocab_size 256 is too large for the training transcripts (sentencepiece can make at most "
         "12 tokens of them); pass --vocab_size 12 or less, or train on more text"),
        ("INTERNAL: [...] Vocabulary size is smaller than required_chars. 10 vs 11. Increase vocab_size",
         "error: --vocab_size 10 is too small for the characters of the training transcripts (they need 11 "
         "tokens); pass --vocab_size 11 or more"),
    ],
)  # fmt: skip
def test_main_guard_sentencepiece_vocab_errors(message, expected):
    def main():
        raise RuntimeError(message)

    with pytest.raises(SystemExit) as err:
        main_guard(main)
    assert err.value.code == expected
    with pytest.raises(RuntimeError, match="other"):
        main_guard(lambda: (_ for _ in ()).throw(RuntimeError("other")))
