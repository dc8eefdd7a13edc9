"""Table 2's Shakespeare block (LSTM, C = 0.1, 54%) from our results, in the paper's layout.

Rows are the paper's (FedSGD, then FedAvg by E and B, with its u), columns IID and non-IID.
A cell reads ``ours / paper (speedup over FedSGD ours / paper), eta`` from the row's
``chosen.json`` (``benchmarks.reproduce``). A row whose grid is under way shows its
progress (the eta and round reached, the best accuracy so far); a cell not run shows what
its grid would cost: ``not run (est. N h)``, three runs of the paper's rounds x seconds
per round, with

    seconds per round = fixed + E x c(B) x epoch seconds

measured on this machine: ``fixed`` (a round's central evaluation, every round or every
5th as the preset says, and its transport) and ``epoch seconds`` (one local epoch of the
sampled clients at B = 10, two ClientApps at once) are the medians of a Shakespeare run's
rounds (its ``seconds``, ``clients_seconds`` and ``evaluate_seconds``); c(B), the cost of
an example at batch size B relative to B = 10, is ``BATCH_COST`` (measured with one torch
thread: 10.6, 5.4 and 10.3 ms per line at B = 10, 50 and inf).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from benchmarks.paper import TABLE2_SHAKESPEARE, rows_by_name
from benchmarks.shakespeare_corpus import PAPER_U
from benchmarks.table_cells import grid_cell, metrics_rows, table_cli

GRID_SIZE = 3
BATCH_COST = {10: 1.0, 50: 0.51, 0: 0.97}
FEDSGD = (1, 0)


def round_costs(results: Path) -> tuple[float, float, float] | None:
    """(transport s, evaluation s, one epoch of the sampled clients at B = 10, s) per round,
    medians over the rounds (from round 2) of our E, B = 10 Shakespeare runs."""
    transport, evaluation, epoch = [], [], []
    for config_path in sorted(results.glob("*/*/config.json")):
        values = json.loads(config_path.read_text()).get("config", {})
        if values.get("task") != "shakespeare-lstm" or values.get("batch_size") != 10:
            continue
        for row in metrics_rows(config_path.parent):
            if row.get("round", 0) < 2 or not row.get("seconds"):
                continue
            clients, evaluate = float(row["clients_seconds"]), float(row["evaluate_seconds"])
            transport.append(float(row["seconds"]) - clients - evaluate)
            evaluation.append(evaluate)
            epoch.append(clients / int(values["local_epochs"]))
    if not epoch:
        return None
    return statistics.median(transport), statistics.median(evaluation), statistics.median(epoch)


def estimate_hours(
    costs: tuple[float, float, float], epochs: int, batch: int, rounds: int, eval_every: int
) -> float:
    transport, evaluation, epoch = costs
    per_round = transport + evaluation / eval_every + epochs * BATCH_COST[batch] * epoch
    return GRID_SIZE * rounds * per_round / 3600


def render(results: Path) -> str:
    rows = rows_by_name()
    costs = round_costs(results)
    header = [
        "| alg | E | B | u (paper) | IID: ours / paper (speedup), eta | "
        "non-IID: ours / paper (speedup), eta |",
        "|---|---|---|---|---|---|",
    ]
    body = []
    for (epochs, batch), paper in TABLE2_SHAKESPEARE.items():
        setting = "fedsgd" if (epochs, batch) == FEDSGD else f"E{epochs}-B{batch or 'inf'}"
        cells = []
        for index, partition in enumerate(("iid", "noniid")):
            row = rows[f"table2-shakespeare-{partition}-C0.1-{setting}"]
            eval_every = row.run_config()["eval-every"]
            assert isinstance(eval_every, int)
            hours = (
                None
                if costs is None
                else estimate_hours(costs, epochs, batch, paper[index], eval_every)
            )
            cells.append(
                grid_cell(
                    results,
                    row.name,
                    f"table2-shakespeare-{partition}-C0.1-fedsgd",
                    paper_rounds=paper[index],
                    paper_base=TABLE2_SHAKESPEARE[FEDSGD][index],
                    estimate=None if hours is None else f"{hours:.0f} h",
                )
            )
        alg = "FedSGD" if (epochs, batch) == FEDSGD else "FedAvg"
        body.append(
            f"| {alg} | {epochs} | {batch or 'inf'} | {PAPER_U[(epochs, batch)]} | "
            f"{cells[0]} | {cells[1]} |"
        )
    note = (
        ""
        if costs is None
        else (
            f"\nEstimates: a round costs {costs[0]:.0f} s of transport + {costs[1]:.0f} s per "
            f"central evaluation + E x c(B) x {costs[2]:.0f} s (one epoch of the sampled "
            "clients at B = 10), times the paper's rounds, times a grid of 3 etas.\n"
        )
    )
    return "\n".join(header + body) + "\n" + note


DOCS = Path(__file__).resolve().parents[1] / "docs" / "shakespeare.md"
MARKERS = ("<!-- table2-shakespeare -->", "<!-- /table2-shakespeare -->")


def main() -> None:
    table_cli(render, DOCS, MARKERS, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
