"""tools/sparsity_sweep.py: the grid's table and frontier plot from finished runs, and its errors."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("sparsity_sweep", ROOT / "tools" / "sparsity_sweep.py")
sweep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep)


def fake_run(run: Path, wer: dict, ratio: float, rates: dict) -> None:
    """The files a finished AN4 run leaves that the table reads."""
    run.mkdir(parents=True)
    (run / "hyperparams.yaml").write_text(
        "encoder: !new:snn_asr.SpikingRNN\n    input_size: 4\n    hidden_size: 8\n"
    )
    (run / "history.json").write_text(
        json.dumps([{"epoch": 1, "valid_error_rate": 90.0, "train_seconds": 3.0}])
    )
    (run / "ops_test.json").write_text(json.dumps({"mults_per_frame": 1000 * ratio, "ratio_to_gru": ratio,
                                                   "spike_rates": rates}))  # fmt: skip
    for split, value in wer.items():
        (run / f"wer_{split}.json").write_text(json.dumps({"speechbrain": {"wer": value}}))


def test_table_and_frontier_from_finished_runs(tmp_path, capsys):
    fake_run(tmp_path / "dense" / "1", {"dev": 40.0, "test": 38.0}, 0.2, {"layers.0": 0.3})
    fake_run(tmp_path / "dense" / "2", {"dev": 44.0, "test": 40.0}, 0.22, {"layers.0": 0.32})
    fake_run(tmp_path / "sparse" / "1", {"dev": 50.0, "test": 47.0}, 0.09, {"layers.0": 0.1})
    fake_run(tmp_path / "lstm" / "1", {"dev": 35.0, "test": 33.0}, 1.33, {})
    args = ["AN4", str(tmp_path), str(tmp_path), "--table-only", "--seeds", "1", "2"]
    sweep.main([*args, "--points", "dense=", "sparse=--spike_rate_penalty 8", "--baselines", "lstm"])
    assert (tmp_path / "frontier.png").stat().st_size > 0
    table = (tmp_path / "frontier.md").read_text()
    assert "| dense | 2 | 42.0 ± 2.8 |" in table  # two seeds: mean ± sd
    panels = json.loads((tmp_path / "frontier.json").read_text())["panels"]
    kinds = {p["label"]: p["kind"] for p in panels["dev WER"]}
    assert kinds == {"dense (2 seeds)": "sweep", "sparse": "sweep", "lstm": "baseline"}
    assert "warning" not in capsys.readouterr().err


def test_a_bad_point_or_no_finished_run_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="NAME=OVERRIDES"):
        sweep.parse_point("--spike_rate_penalty 2")
    with pytest.raises(SystemExit, match="no finished run"):
        sweep.main(["AN4", str(tmp_path), str(tmp_path), "--table-only", "--points", "a="])


compare = sys.modules["compare_encoders"]  # imported by the sweep, from tools/


def test_compare_encoders_shows_the_lm_columns_asked_for(tmp_path, capsys):
    fake_run(
        tmp_path / "snn" / "1", {"dev": 40.0, "dev_ngram": 30.0, "test": 38.0, "test_ngram": 28.0}, 0.2, {}
    )
    base = ["AN4", str(tmp_path), str(tmp_path), "--models", "snn", "--seeds", "1", "--table-only"]
    compare.main(base)
    assert "test WER +n-gram" in (tmp_path / "table.md").read_text()
    compare.main([*base, "--lms", "none"])
    table = (tmp_path / "table.md").read_text()
    assert "test WER" in table and "+n-gram" not in table
    with pytest.raises(SystemExit):
        compare.main([*base, "--lms", "+4-gram"])
    assert "--lms takes some of: +RNNLM +n-gram +n-gram+RNNLM none" in capsys.readouterr().err


def test_runs_go_two_at_a_time_and_a_failure_stops_them_in_one_line(tmp_path):
    started = tmp_path / "started"
    started.mkdir()
    # each run marks itself started, then waits (10 s at most) for a second one to be running
    step = (
        "import pathlib, sys, time; p = pathlib.Path(sys.argv[1])\n"
        "(p / sys.argv[2]).touch(); t = time.time()\n"
        "while len(list(p.iterdir())) < 2 and time.time() - t < 10: time.sleep(0.05)\n"
        "print(len(list(p.iterdir())))"
    )
    python = sys.executable
    jobs = [(str(tmp_path / f"{i}.log"), [python, "-c", step, str(started), str(i)]) for i in range(3)]
    compare.train_all(jobs, 2)
    counts = [int((tmp_path / f"{i}.log").read_text()) for i in range(3)]
    assert counts[0] >= 2 and counts[1] >= 2 and counts[2] == 3, counts  # one at a time: 1 after 10 s
    bad = [(str(tmp_path / "bad.log"), [python, "-c", "raise SystemExit(3)"])]
    with pytest.raises(SystemExit, match=r"error: a run failed \(see .*bad.log\); rerun to resume it"):
        compare.train_all(bad, 2)
