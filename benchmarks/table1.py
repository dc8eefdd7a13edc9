"""The paper's Table 1 (the effect of C) from our reproduction results, in the paper's layout.

Table 1 has one block per model (2NN with E=1, CNN with E=5), rows C = 0, 0.1, 0.2, 0.5, 1
and columns (IID, non-IID) x (B = inf, B = 10); a cell is the number of rounds to the target
(97% / 99%) and, in parentheses, the speedup over C = 0 in the same column. Each cell here reads

    ours / paper (speedup ours / paper), eta

from the row's ``chosen.json`` (written by ``benchmarks.reproduce``); a cell set the same way in
Table 2 (C = 0.1: FedSGD, CNN E=5 B=10) is found under that name too.

A cell not run shows what running it would cost: ``not run (est. N h)``, the eta grid's
three runs of ``expected rounds x seconds per round + a run's fixed start-up``, where

- seconds per round are measured: the median round (from round 2 on) of every run we have
  of that model and B, fitted as ``a + b m`` over the clients per round m (a: the central
  evaluation and the round's fixed cost, b: one client update on two cores); and
- expected rounds are the paper's, scaled by the median of our rounds / the paper's over the
  cells run of the same model (the paper's "—" cells, which it did not reach, take the
  round cap of the preset).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.paper import C_VALUES, TABLE1, Row, rows_by_name

# A run's fixed cost on this machine (launch, Ray and actors, teardown): see docs/performance.md.
RUN_FIXED_SECONDS = 20.0
GRID_SIZE = 3
NUM_CLIENTS = 100  # K of every MNIST row

Setting = tuple[str, str, float, int, int]  # task, partition, C, E, B (0 = inf)


def setting_of(row: Row) -> Setting:
    return (row.task, row.partition, row.fraction, row.epochs, row.batch)


def clients_per_round(fraction: float, num_clients: int = NUM_CLIENTS) -> int:
    """m = max(floor(C K), 1), as the strategy samples."""
    return max(math.floor(fraction * num_clients + 1e-9), 1)


@dataclass(frozen=True)
class Chosen:
    """A row's chosen run (the eta of the grid that reached the target first)."""

    row: Row
    lr: float
    summary: dict[str, Any]
    grid: dict[str, float | None]

    @property
    def rounds(self) -> float | None:
        value = self.summary.get("rounds_to_target")
        return None if value is None else float(value)


def read_chosen(results: Path) -> dict[Setting, Chosen]:
    """Every row's chosen run with the default inputs and init, by setting (not the ablations)."""
    rows = rows_by_name()
    found: dict[Setting, Chosen] = {}
    for path in sorted(results.glob("*/chosen.json")):
        chosen = json.loads(path.read_text())
        if chosen.get("input_scaling", "standardised") != "standardised" or (
            chosen.get("init", "pytorch") != "pytorch"
        ):
            continue
        row = rows[chosen["row"]]
        summary = json.loads((path.parent / chosen["run"] / "summary.json").read_text())
        found[setting_of(row)] = Chosen(row, float(chosen["lr"]), summary, chosen["grid"])
    return found


def median_round_seconds(run_dir: Path) -> float | None:
    """The median ``seconds`` of a run's rounds from round 2 (round 1 pays Ray's start-up)."""
    metrics = run_dir / "metrics.jsonl"
    if not metrics.is_file():
        return None
    seconds = []
    for line in metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("round", 0) >= 2 and record.get("seconds"):
            seconds.append(float(record["seconds"]))
    return statistics.median(seconds) if seconds else None


def timing_points(results: Path) -> dict[tuple[str, int], list[tuple[int, float]]]:
    """(model, B) -> [(m, median seconds per round)] over every run directory we have."""
    points: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for config_path in sorted(results.glob("**/config.json")):
        config = json.loads(config_path.read_text())
        values = config.get("config", config)
        task, batch = values.get("task"), values.get("batch_size")
        fraction = values.get("fraction_train")
        if task not in ("mnist-2nn", "mnist-cnn") or batch is None or fraction is None:
            continue
        epochs = 1 if task == "mnist-2nn" else 5
        if values.get("local_epochs") != epochs:
            continue
        seconds = median_round_seconds(config_path.parent)
        if seconds is not None:
            points.setdefault((task, int(batch)), []).append(
                (clients_per_round(float(fraction)), seconds)
            )
    return points


def fit_round_seconds(points: Iterable[tuple[int, float]]) -> tuple[float, float] | None:
    """Least-squares ``a + b m`` through the points; with one m only, ``b m`` (a = 0)."""
    pairs = list(points)
    if not pairs:
        return None
    ms = np.array([m for m, _ in pairs], dtype=float)
    seconds = np.array([s for _, s in pairs], dtype=float)
    if len(set(ms)) < 2:
        return 0.0, float(np.median(seconds / ms))
    b, a = np.polyfit(ms, seconds, 1)
    return max(float(a), 0.0), max(float(b), 0.0)


def rounds_ratio(chosen: dict[Setting, Chosen], task: str) -> float | None:
    """Median of our rounds / the paper's over the cells of ``task`` that reached the target."""
    ratios = [
        c.rounds / c.row.paper_rounds
        for s, c in chosen.items()
        if s[0] == task and c.rounds is not None and c.row.paper_rounds
    ]
    return statistics.median(ratios) if ratios else None


def _speedup(rounds: float | None, base: float | None) -> str:
    if rounds is None or base is None or rounds <= 0:
        return "—"
    return f"{base / rounds:.1f}x"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds / 60:.0f} min"


def render(results: Path) -> str:
    """Table 1 in the paper's layout, one markdown table per model."""
    chosen = read_chosen(results)
    fits = {key: fit_round_seconds(p) for key, p in timing_points(results).items()}
    rows = {setting_of(r): r for r in rows_by_name().values() if r.table == "table1"}
    blocks = []
    for task, epochs, label in (("mnist-2nn", 1, "2NN, E = 1"), ("mnist-cnn", 5, "CNN, E = 5")):
        ratio = rounds_ratio(chosen, task)
        columns = [(p, b) for p in ("iid", "noniid") for b in (0, 10)]
        head = " | ".join(
            f"{'IID' if p == 'iid' else 'non-IID'} B={'inf' if b == 0 else b}" for p, b in columns
        )
        lines = [f"**{label}**", "", f"| C | {head} |", "|---" * (len(columns) + 1) + "|"]
        for fraction in C_VALUES:
            cells = []
            for partition, batch in columns:
                setting = (task, partition, fraction, epochs, batch)
                base = chosen.get((task, partition, 0.0, epochs, batch))
                paper_base = TABLE1[(task, partition, 0)][0 if batch == 0 else 1]
                cells.append(
                    _cell(
                        setting,
                        chosen=chosen.get(setting),
                        row=rows[setting],
                        base=base.rounds if base else None,
                        paper_base=paper_base,
                        fit=fits.get((task, batch)),
                        ratio=ratio,
                    )
                )
            lines.append(f"| {fraction:g} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _cell(
    setting: Setting,
    *,
    chosen: Chosen | None,
    row: Row,
    base: float | None,
    paper_base: int | None,
    fit: tuple[float, float] | None,
    ratio: float | None,
) -> str:
    paper = row.paper_rounds
    paper_text = "—" if paper is None else str(paper)
    first_row = setting[2] == 0.0
    if chosen is not None:
        ours = chosen.rounds
        ours_text = (
            f"not reached in {chosen.summary.get('rounds_completed')}"
            if ours is None
            else f"**{ours:.1f}**"
        )
        speedups = "" if first_row else f" ({_speedup(ours, base)} / {_speedup(paper, paper_base)})"
        return f"{ours_text} / {paper_text}{speedups}, eta {chosen.lr:g}"
    if fit is None or ratio is None:
        return f"not run / {paper_text}"
    expected = row.rounds if paper is None else paper * ratio
    per_round = fit[0] + fit[1] * clients_per_round(setting[2])
    cost = GRID_SIZE * (expected * per_round + RUN_FIXED_SECONDS)
    bound = "≥ " if paper is None else ""
    return f"not run (est. {bound}{_hours(cost)}) / {paper_text}"


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=Path(__file__).parent / "results" / "reproduction"
    )
    args = parser.parse_args()
    print(render(args.results))


if __name__ == "__main__":
    main()
