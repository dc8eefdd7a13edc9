"""Table 2's MNIST CNN block (C = 0.1, 99%) from our results, in the paper's layout.

Rows are the paper's (FedSGD, then FedAvg by E and B, with u = E 600 / B), columns IID and
non-IID. A cell reads ``ours / paper (speedup over FedSGD ours / paper), eta`` from the
row's ``chosen.json`` (``benchmarks.reproduce``); a row being run shows its progress; a cell
not run shows what its grid would cost: ``not run (est. N h)``, three runs of the paper's
rounds x seconds per round, with

    seconds per round = a + E x c(B) x b

measured on this machine: ``a`` (the round's fixed cost, a central evaluation included)
and ``b`` (one local epoch of the 10 sampled clients at B = 10, two ClientApps at once) are
fitted to the median round of every CNN run we have at C = 0.1, B = 10 (E = 1 and E = 5);
c(B), the cost of an epoch at batch size B relative to B = 10, is ``BATCH_COST`` (measured
with one torch thread on 600 examples: 1.38, 1.23 and 2.43 s per epoch at B = 10, 50 and
inf; the E = 5, B = inf timing probe gives 1.75 for inf).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from benchmarks.paper import TABLE2_CNN, rows_by_name
from benchmarks.table1 import median_round_seconds
from benchmarks.table_cells import grid_cell, table_cli

GRID_SIZE = 3
BATCH_COST = {10: 1.0, 50: 0.9, 0: 1.8}
FEDSGD = (1, 0)
EXAMPLES_PER_CLIENT = 600


def round_costs(results: Path) -> tuple[float, float] | None:
    """(a, b): seconds per round = a + E b at C = 0.1, B = 10, fitted over E."""
    by_epochs: dict[int, list[float]] = {}
    for config_path in sorted(results.glob("**/config.json")):
        values = json.loads(config_path.read_text()).get("config", {})
        if (values.get("task"), values.get("fraction_train"), values.get("batch_size")) != (
            "mnist-cnn",
            0.1,
            10,
        ):
            continue
        median = median_round_seconds(config_path.parent)
        if median is not None:
            by_epochs.setdefault(int(values["local_epochs"]), []).append(median)
    if len(by_epochs) < 2:
        return None
    # The median over runs of a setting: a run slowed by other work on the machine is one of
    # several.
    epochs = np.array(sorted(by_epochs), dtype=float)
    seconds = np.array([statistics.median(by_epochs[int(e)]) for e in epochs])
    b, a = np.polyfit(epochs, seconds, 1)
    return max(float(a), 0.0), float(b)


def estimate_hours(costs: tuple[float, float], epochs: int, batch: int, rounds: int) -> float:
    a, b = costs
    return GRID_SIZE * rounds * (a + epochs * BATCH_COST[batch] * b) / 3600


def render(results: Path) -> str:
    rows = rows_by_name()
    costs = round_costs(results)
    lines = [
        "| alg | E | B | u | IID: ours / paper (speedup), eta | "
        "non-IID: ours / paper (speedup), eta |",
        "|---|---|---|---|---|---|",
    ]
    for (epochs, batch), paper in TABLE2_CNN.items():
        setting = "fedsgd" if (epochs, batch) == FEDSGD else f"E{epochs}-B{batch or 'inf'}"
        cells = [
            grid_cell(
                results,
                rows[f"table2-cnn-{partition}-C0.1-{setting}"].name,
                f"table2-cnn-{partition}-C0.1-fedsgd",
                paper_rounds=paper[index],
                paper_base=TABLE2_CNN[FEDSGD][index],
                estimate=None
                if costs is None
                else f"{estimate_hours(costs, epochs, batch, paper[index]):.1f} h",
            )
            for index, partition in enumerate(("iid", "noniid"))
        ]
        u = epochs if batch == 0 else epochs * EXAMPLES_PER_CLIENT // batch
        alg = "FedSGD" if (epochs, batch) == FEDSGD else "FedAvg"
        lines.append(f"| {alg} | {epochs} | {batch or 'inf'} | {u} | {cells[0]} | {cells[1]} |")
    note = (
        ""
        if costs is None
        else (
            f"\nEstimates: a round costs {costs[0]:.1f} s + E x c(B) x {costs[1]:.1f} s, times "
            "the paper's rounds, times a grid of 3 etas.\n"
        )
    )
    return "\n".join(lines) + "\n" + note


DOCS = Path(__file__).resolve().parents[1] / "docs" / "reproduction.md"
MARKERS = ("<!-- table2-cnn -->", "<!-- /table2-cnn -->")


def main() -> None:
    table_cli(render, DOCS, MARKERS, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
