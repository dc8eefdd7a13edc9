"""Compare finished runs: one accuracy plot and one markdown table.

    python -m server.compare RUN_DIR [RUN_DIR ...] --out DIR [--name comparison]

A RUN_DIR is a results directory (holding ``config.json``); a directory that
holds run directories stands for all of them. Writes ``DIR/<name>.png`` (test
accuracy against rounds, one line per run, the target lines in gray) and
``DIR/<name>.md`` (config, rounds-to-target, best and final accuracy, bytes),
both read from the runs' ``config.json``/``summary.json``/``metrics.jsonl``,
and prints the table. Runs are labelled by the config values in which they
differ (e.g. ``lr=0.05``), else by directory name.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from server.plots import plot_comparison
from server.results import RunResults, load_run


def _batch(value: Any) -> str:
    return "inf" if value == 0 else f"{value}"


# (column, paper symbol used in labels, how to read it from a run)
_CONFIG_COLUMNS: list[tuple[str, str, Callable[[RunResults], Any]]] = [
    ("task", "task", lambda r: r.experiment.get("task")),
    ("partition", "partition", lambda r: r.experiment.get("partition")),
    ("K", "K", lambda r: r.config.get("num_clients")),
    ("C", "C", lambda r: r.experiment.get("fraction_train")),
    ("E", "E", lambda r: r.experiment.get("local_epochs")),
    ("B", "B", lambda r: _batch(r.experiment.get("batch_size"))),
    ("eta", "lr", lambda r: r.experiment.get("lr")),
    ("lr decay", "decay", lambda r: r.experiment.get("lr_decay")),
    ("seed", "seed", lambda r: r.experiment.get("seed")),
]


def _number(value: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _config_value(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _megabytes(value: Any) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


_RESULT_COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("status", lambda s: str(s.get("status", "running"))),
    ("rounds", lambda s: _number(s.get("rounds_completed"), 0)),
    ("target", lambda s: _number(s.get("target_accuracy"), 2)),
    ("rounds to target", lambda s: _number(s.get("rounds_to_target"), 1)),
    ("best accuracy", lambda s: _number(s.get("best_accuracy"), 4)),
    ("final accuracy", lambda s: _number(s.get("final_accuracy"), 4)),
    ("MB total", lambda s: _megabytes(s.get("total_bytes"))),
]


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run directories among ``paths``; a directory of runs expands to its runs, sorted."""
    found: list[Path] = []
    for path in paths:
        if (path / "config.json").is_file():
            found.append(path)
            continue
        children = sorted(p for p in path.glob("*") if (p / "config.json").is_file())
        if not children:
            raise FileNotFoundError(f"{path}: neither a run directory nor a directory of runs")
        found += children
    return found


def labels_for(runs: Sequence[RunResults]) -> list[str]:
    """Label each run by the config values that differ between the runs."""
    differing = [
        (symbol, read)
        for _, symbol, read in _CONFIG_COLUMNS
        if len({str(read(run)) for run in runs}) > 1
    ]
    labels = [" ".join(f"{symbol}={read(run)}" for symbol, read in differing) for run in runs]
    if len(set(labels)) < len(labels) or not all(labels):
        return [run.directory.name for run in runs]
    return labels


def markdown_table(runs: Sequence[RunResults]) -> str:
    """One row per run: its config in the paper's symbols, then its summary."""
    header = ["run"] + [c[0] for c in _CONFIG_COLUMNS] + [c[0] for c in _RESULT_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        cells = [run.directory.name]
        cells += [_config_value(read(run)) for _, _, read in _CONFIG_COLUMNS]
        cells += [show(run.summary) for _, show in _RESULT_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(paths: Sequence[Path], out: Path, name: str = "comparison") -> tuple[Path, Path]:
    """Write ``out/<name>.png`` and ``out/<name>.md`` for the runs under ``paths``."""
    runs = [load_run(path) for path in find_runs(paths)]
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"{name}.md"
    table.write_text(markdown_table(runs))
    plot = plot_comparison(runs, labels_for(runs), out / f"{name}.png")
    return plot, table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories, or their parents")
    parser.add_argument("--out", type=Path, required=True, help="where to write the outputs")
    parser.add_argument("--name", default="comparison", help="file stem (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        plot, table = compare(args.runs, args.out, args.name)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table.read_text(), end="")
    print(f"wrote {plot} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
