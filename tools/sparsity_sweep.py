#!/usr/bin/env python3
"""Trains the spiking encoder over a grid of sparsity settings with one recipe, then draws the frontier.

Each point of the grid is a name and the recipe overrides it adds to ``hparams/snn.yaml``
(``NAME=--key value ...``; ``NAME=`` is the recipe as it is), trained once per seed into
``OUT/<name>/<seed>``; ``--baselines`` (hparams stems, e.g. ``lstm gru``) train the same way into
``OUT/<stem>/<seed>``. Finished runs resume from their checkpoints, so rerunning only tabulates;
``--table-only`` trains nothing and uses the seeds that have finished. ``--jobs 2`` trains two
runs at a time, one thread each.

Writes ``OUT/frontier.md`` / ``.json`` (the table of :mod:`compare_encoders`: dev and test error
without and with the LM, multiplications per frame and the ratio to a same-size GRU, spike
rates; ``mean ± sd`` over seeds) and ``OUT/frontier.png``: dev and test error (no LM) against
the ratio to a same-size GRU, the spiking points joined by their Pareto front, the baselines as
squares, error bars over seeds, and the 10x target (ratio 0.10) marked.

Run::

    python tools/sparsity_sweep.py AN4 ../shared/data/an4 results/AN4-sparsity --jobs 2 \\
        --points "baseline=" "pen0.5=--spike_rate_penalty 0.5" "u15=--unsigned True --threshold 15" \\
        --baselines lstm gru --seeds 1234
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_encoders import SPLITS, aggregate, check_lms, finished, markdown, summarize, train_all  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.10
"""The paper's headline: about 10x fewer multiplications than a GRU."""


def parse_point(text: str) -> tuple[str, list[str]]:
    """``"name=--key value ..."`` -> ``(name, ["--key", "value", ...])`` (a one-line error else).

    Example
    -------
    >>> parse_point("pen0.5=--spike_rate_penalty 0.5")
    ('pen0.5', ['--spike_rate_penalty', '0.5'])
    """
    name, sep, overrides = text.partition("=")
    if not sep or not name or "/" in name:
        sys.exit(
            f"error: --points takes NAME=OVERRIDES (e.g. 'pen0.5=--spike_rate_penalty 0.5'), got {text!r}"
        )
    return name, shlex.split(overrides)


def points_of(rows: list[dict], metric: str, split: str, kinds: dict[str, str]) -> list[dict]:
    """The frontier's points for one panel: ``split``'s error (no LM) against the ratio to a GRU."""
    column = f"{split} {metric}"
    points = []
    for row in rows:
        if row.get(column) is None:
            continue
        x, y = row["vs GRU"], row[column]
        x_mean, x_sd = x if isinstance(x, tuple) else (x, 0.0)
        y_mean, y_sd = y if isinstance(y, tuple) else (y, 0.0)
        label = row["model"] + (f" ({row['seeds']} seeds)" if row["seeds"] > 1 else "")
        points.append(
            {
                "label": label,
                "x": x_mean,
                "x_sd": x_sd,
                "y": y_mean,
                "y_sd": y_sd,
                "kind": kinds[row["model"]],
            }
        )
    return points


def main(argv: list[str] | None = None) -> None:
    from snn_asr.recipes.plots import frontier

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Everything after -- goes to every run's train.py."
    )
    parser.add_argument("recipe", choices=sorted(SPLITS))
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--points", nargs="*", default=[], help="NAME=OVERRIDES for hparams/snn.yaml")
    parser.add_argument("--baselines", nargs="*", default=[], help="hparams stems trained alike (lstm gru)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1234])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--table-only", action="store_true", help="tabulate finished runs, train nothing")
    parser.add_argument("--lms", nargs="+", help="the table's LM columns, as compare_encoders' --lms")
    argv = sys.argv[1:] if argv is None else argv
    shared = argv[argv.index("--") + 1 :] if "--" in argv else []  # overrides for every run
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    check_lms(parser, args.recipe, args.lms)
    grid = [parse_point(p) for p in args.points] + [(stem, []) for stem in args.baselines]
    kinds = {name: "sweep" for name, _ in grid} | {stem: "baseline" for stem in args.baselines}
    train = ROOT / "recipes" / args.recipe / "train.py"
    jobs = []
    for name, overrides in grid:
        stem = name if name in args.baselines else "snn"
        for seed in args.seeds:
            run = args.out / name / str(seed)
            if args.table_only or finished(args.recipe, run):
                continue
            command = [
                sys.executable, str(train), f"hparams/{stem}.yaml", "--data_folder", str(args.data_folder),
                "--seed", str(seed), "--output_folder", str(run), *overrides, *shared,
            ]  # fmt: skip
            jobs.append((str(args.out / "logs" / f"{name}-{seed}.log"), command))
    train_all(jobs, args.jobs)
    rows = []
    for name, _ in grid:
        runs = [args.out / name / str(seed) for seed in args.seeds]
        done = [summarize(args.recipe, run, args.lms) for run in runs if finished(args.recipe, run)]
        if done:
            rows.append(aggregate(name, done))
        else:
            print(
                f"warning: no finished run of {name} in {str(args.out / name)!r}: left out", file=sys.stderr
            )
    if not rows:
        sys.exit(f"error: no finished run in {str(args.out)!r}; train first (drop --table-only)")
    metric = "PER" if args.recipe == "TIMIT" else "WER"
    panels = {f"{split} {metric}": points_of(rows, metric, split, kinds) for split in SPLITS[args.recipe]}
    args.out.mkdir(parents=True, exist_ok=True)
    frontier(panels, args.out / "frontier.png", targets={"10x fewer than a GRU": TARGET_RATIO})
    table = markdown(rows)
    (args.out / "frontier.md").write_text(table + "\n")
    (args.out / "frontier.json").write_text(json.dumps({"rows": rows, "panels": panels}, indent=1))
    print(table)
    print(f"frontier: {args.out / 'frontier.png'}")


if __name__ == "__main__":
    main()
